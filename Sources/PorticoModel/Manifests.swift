/// Every resource read from the manifests, with the problems found while reading them.
public struct Manifests: Sendable {
    public var services: [Service] = []
    public var endpointSlices: [EndpointSlice] = []
    public var endpoints: [Endpoints] = []
    public var ingresses: [Ingress] = []
    public var ingressClasses: [IngressClass] = []
    public var secrets: [Secret] = []
    public var configMaps: [ConfigMap] = []
    public var addressPools: [IPAddressPool] = []
    public var l2Advertisements: [L2Advertisement] = []
    public var namespaces: [Namespace] = []
    /// Network boot (`portico.dev/v1alpha1`).
    public var bootProfiles: [BootProfileResource] = []
    public var machineGroups: [MachineGroupResource] = []
    public var machines: [MachineResource] = []
    public var netbootSettings: [NetbootSettingsResource] = []
    /// Problems found while reading and validating.
    public var diagnostics: [Diagnostic] = []
    /// The files read, in order.
    public var files: [String] = []

    public init() {}

    public func service(namespace: String, name: String) -> Service? {
        services.first { $0.metadata.namespace == namespace && $0.metadata.name == name }
    }

    public func secret(namespace: String, name: String) -> Secret? {
        secrets.first { $0.metadata.namespace == namespace && $0.metadata.name == name }
    }

    /// A Secret named `namespace/name`, or `name` in `defaultNamespace`.
    public func secret(reference: String, defaultNamespace: String) -> Secret? {
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1: return secret(namespace: defaultNamespace, name: parts[0])
        case 2: return secret(namespace: parts[0], name: parts[1])
        default: return nil
        }
    }

    /// The Portico IngressClass that serves an Ingress, or nil when another controller
    /// does (or no class applies): `spec.ingressClassName`, else the legacy annotation,
    /// else the Portico class marked default.
    public func servingClass(of ingress: Ingress) -> IngressClass? {
        if let requested = ingress.requestedClass {
            return ingressClasses.first {
                $0.metadata.name == requested && $0.controller == IngressClass.porticoController
            }
        }
        return ingressClasses.first { $0.isDefault && $0.controller == IngressClass.porticoController }
    }

    /// Every resource's id and position, for duplicate detection.
    var identities: [(ResourceID, SourceLocation)] {
        func ids(_ kind: String, _ metas: [ObjectMeta]) -> [(ResourceID, SourceLocation)] {
            metas.map { (ResourceID(kind: kind, namespace: $0.namespace, name: $0.name), $0.location) }
        }
        return ids("Service", services.map(\.metadata)) + ids("EndpointSlice", endpointSlices.map(\.metadata))
            + ids("Endpoints", endpoints.map(\.metadata)) + ids("Ingress", ingresses.map(\.metadata))
            + ids("IngressClass", ingressClasses.map(\.metadata)) + ids("Secret", secrets.map(\.metadata))
            + ids("ConfigMap", configMaps.map(\.metadata))
            + ids("IPAddressPool", addressPools.filter { $0.legacyProtocol == nil }.map(\.metadata))
            + ids("L2Advertisement", l2Advertisements.map(\.metadata)) + ids("Namespace", namespaces.map(\.metadata))
            + ids("BootProfile", bootProfiles.map(\.metadata)) + ids("MachineGroup", machineGroups.map(\.metadata))
            + ids("Machine", machines.map(\.metadata)) + ids("NetbootSettings", netbootSettings.map(\.metadata))
    }
}
