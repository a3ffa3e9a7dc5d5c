public import PorticoAllocation

/// Identifies one resource: kind, namespace and name.
public struct ResourceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var kind: String
    public var namespace: String
    public var name: String

    public init(kind: String, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    /// `namespace/name`.
    public var key: String { "\(namespace)/\(name)" }
    public var description: String { "\(kind) \(key)" }

    public static func < (lhs: ResourceID, rhs: ResourceID) -> Bool {
        (lhs.kind, lhs.namespace, lhs.name) < (rhs.kind, rhs.namespace, rhs.name)
    }
}

/// The metadata every resource has.
public struct ObjectMeta: Hashable, Sendable {
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    public var annotations: [String: String]
    /// Where each annotation's value is, for messages about it.
    public var annotationLocations: [String: SourceLocation]
    /// `metadata.creationTimestamp` in seconds since 1970, when given; orders Ingresses.
    public var creationTimestamp: Int?
    /// The start of the resource in its file.
    public var location: SourceLocation

    public init(
        name: String,
        namespace: String = "default",
        labels: [String: String] = [:],
        annotations: [String: String] = [:],
        annotationLocations: [String: SourceLocation] = [:],
        creationTimestamp: Int? = nil,
        location: SourceLocation
    ) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.annotationLocations = annotationLocations
        self.creationTimestamp = creationTimestamp
        self.location = location
    }

    public var key: String { "\(namespace)/\(name)" }

    /// The location of an annotation's value, or of the resource.
    public func location(ofAnnotation name: String) -> SourceLocation {
        annotationLocations[name] ?? location
    }
}

/// A field's path and position, kept where later checks need to point at it.
public struct FieldReference: Hashable, Sendable {
    public var path: String
    public var location: SourceLocation

    public init(path: String, location: SourceLocation) {
        self.path = path
        self.location = location
    }
}

/// v1 Service.
public struct Service: Hashable, Sendable {
    public enum ServiceType: String, Hashable, Sendable, CaseIterable {
        case clusterIP = "ClusterIP"
        case nodePort = "NodePort"
        case loadBalancer = "LoadBalancer"
        case externalName = "ExternalName"
    }

    public struct Port: Hashable, Sendable {
        public var name: String?
        public var `protocol`: TransportProtocol
        public var port: Int
        public var targetPort: IntOrString?
        public var appProtocol: String?
        public var field: FieldReference

        public init(
            name: String? = nil,
            protocol: TransportProtocol = .tcp,
            port: Int,
            targetPort: IntOrString? = nil,
            appProtocol: String? = nil,
            field: FieldReference
        ) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
            self.targetPort = targetPort
            self.appProtocol = appProtocol
            self.field = field
        }

        /// The port on the endpoints: `targetPort`, defaulting to `port`.
        public var effectiveTargetPort: IntOrString { targetPort ?? .int(port) }
    }

    public var metadata: ObjectMeta
    public var type: ServiceType
    public var ports: [Port]
    public var selector: [String: String]
    public var loadBalancerIP: String?
    public var loadBalancerClass: String?
    /// `Cluster` (default) or `Local`.
    public var externalTrafficPolicy: String
    public var ipFamilies: [String]
    public var ipFamilyPolicy: String?

    public init(
        metadata: ObjectMeta,
        type: ServiceType = .clusterIP,
        ports: [Port] = [],
        selector: [String: String] = [:],
        loadBalancerIP: String? = nil,
        loadBalancerClass: String? = nil,
        externalTrafficPolicy: String = "Cluster",
        ipFamilies: [String] = [],
        ipFamilyPolicy: String? = nil
    ) {
        self.metadata = metadata
        self.type = type
        self.ports = ports
        self.selector = selector
        self.loadBalancerIP = loadBalancerIP
        self.loadBalancerClass = loadBalancerClass
        self.externalTrafficPolicy = externalTrafficPolicy
        self.ipFamilies = ipFamilies
        self.ipFamilyPolicy = ipFamilyPolicy
    }

    /// The port an Ingress backend names by number (the Service `port`) or by name.
    public func port(matching reference: IntOrString) -> Port? {
        switch reference {
        case .int(let number): return ports.first { $0.port == number && $0.protocol == .tcp }
        case .string(let name): return ports.first { $0.name == name }
        }
    }
}

/// One address with its readiness, from an EndpointSlice or v1 Endpoints.
public struct EndpointAddress: Hashable, Sendable {
    public var address: String
    public var ready: Bool
    public var nodeName: String?

    public init(address: String, ready: Bool = true, nodeName: String? = nil) {
        self.address = address
        self.ready = ready
        self.nodeName = nodeName
    }
}

/// A named port of endpoints.
public struct EndpointPort: Hashable, Sendable {
    public var name: String?
    public var port: Int
    public var `protocol`: TransportProtocol

    public init(name: String? = nil, port: Int, protocol: TransportProtocol = .tcp) {
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }
}

/// discovery.k8s.io/v1 EndpointSlice.
public struct EndpointSlice: Hashable, Sendable {
    public var metadata: ObjectMeta
    /// `IPv4`, `IPv6` or `FQDN`.
    public var addressType: String
    public var endpoints: [EndpointAddress]
    public var ports: [EndpointPort]

    public init(metadata: ObjectMeta, addressType: String, endpoints: [EndpointAddress], ports: [EndpointPort]) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    /// The Service this slice belongs to: its `kubernetes.io/service-name` label.
    public var serviceName: String? { metadata.labels["kubernetes.io/service-name"] }
}

/// v1 Endpoints (legacy): subsets of addresses and ports.
public struct Endpoints: Hashable, Sendable {
    public struct Subset: Hashable, Sendable {
        public var addresses: [EndpointAddress]
        public var ports: [EndpointPort]

        public init(addresses: [EndpointAddress], ports: [EndpointPort]) {
            self.addresses = addresses
            self.ports = ports
        }
    }

    public var metadata: ObjectMeta
    public var subsets: [Subset]

    public init(metadata: ObjectMeta, subsets: [Subset]) {
        self.metadata = metadata
        self.subsets = subsets
    }
}

/// networking.k8s.io/v1 Ingress.
public struct Ingress: Hashable, Sendable {
    public struct ServiceBackend: Hashable, Sendable {
        public var name: String
        public var port: IntOrString

        public init(name: String, port: IntOrString) {
            self.name = name
            self.port = port
        }
    }

    /// A backend: a Service port, or a resource (unsupported, answered with 503).
    public struct Backend: Hashable, Sendable {
        public var service: ServiceBackend?
        public var resource: String?
        public var field: FieldReference

        public init(service: ServiceBackend?, resource: String? = nil, field: FieldReference) {
            self.service = service
            self.resource = resource
            self.field = field
        }
    }

    public struct Path: Hashable, Sendable {
        public var path: String
        public var pathType: String
        public var backend: Backend
        public var field: FieldReference

        public init(path: String, pathType: String, backend: Backend, field: FieldReference) {
            self.path = path
            self.pathType = pathType
            self.backend = backend
            self.field = field
        }
    }

    public struct Rule: Hashable, Sendable {
        /// Empty for every host.
        public var host: String
        public var paths: [Path]
        public var field: FieldReference

        public init(host: String, paths: [Path], field: FieldReference) {
            self.host = host
            self.paths = paths
            self.field = field
        }
    }

    public struct TLS: Hashable, Sendable {
        public var hosts: [String]
        public var secretName: String?
        public var field: FieldReference

        public init(hosts: [String], secretName: String?, field: FieldReference) {
            self.hosts = hosts
            self.secretName = secretName
            self.field = field
        }
    }

    public var metadata: ObjectMeta
    public var ingressClassName: String?
    public var defaultBackend: Backend?
    public var tls: [TLS]
    public var rules: [Rule]

    public init(
        metadata: ObjectMeta,
        ingressClassName: String? = nil,
        defaultBackend: Backend? = nil,
        tls: [TLS] = [],
        rules: [Rule] = []
    ) {
        self.metadata = metadata
        self.ingressClassName = ingressClassName
        self.defaultBackend = defaultBackend
        self.tls = tls
        self.rules = rules
    }

    /// The class this Ingress asks for: `spec.ingressClassName`, else the legacy
    /// `kubernetes.io/ingress.class` annotation.
    public var requestedClass: String? {
        ingressClassName ?? metadata.annotations["kubernetes.io/ingress.class"]
    }
}

/// networking.k8s.io/v1 IngressClass.
public struct IngressClass: Hashable, Sendable {
    public var metadata: ObjectMeta
    public var controller: String

    public init(metadata: ObjectMeta, controller: String) {
        self.metadata = metadata
        self.controller = controller
    }

    /// The controller value that makes Portico serve a class.
    public static let porticoController = "portico.dev/ingress"

    public var isDefault: Bool {
        metadata.annotations["ingressclass.kubernetes.io/is-default-class"] == "true"
    }
}

/// v1 Secret. `data` is decoded from base64 and merged with `stringData`.
public struct Secret: Hashable, Sendable {
    public var metadata: ObjectMeta
    public var type: String
    public var data: [String: [UInt8]]
    /// Where each key's value is.
    public var dataLocations: [String: SourceLocation]

    public init(
        metadata: ObjectMeta,
        type: String = "Opaque",
        data: [String: [UInt8]],
        dataLocations: [String: SourceLocation] = [:]
    ) {
        self.metadata = metadata
        self.type = type
        self.data = data
        self.dataLocations = dataLocations
    }

    public static let tlsType = "kubernetes.io/tls"
}

/// v1 ConfigMap.
public struct ConfigMap: Hashable, Sendable {
    public var metadata: ObjectMeta
    public var data: [String: String]
    /// Where each key's value starts; embedded documents (MetalLB's `config`) report
    /// their positions relative to it.
    public var dataFields: [String: EmbeddedText]

    public init(metadata: ObjectMeta, data: [String: String], dataFields: [String: EmbeddedText] = [:]) {
        self.metadata = metadata
        self.data = data
        self.dataFields = dataFields
    }
}

/// Where a text value sits in its file, to map positions inside it back to the file.
public struct EmbeddedText: Hashable, Sendable {
    /// The file line of the text's first line.
    public var firstLine: Int
    /// Columns to add to a position inside the text.
    public var columnOffset: Int
    public var location: SourceLocation

    public init(firstLine: Int, columnOffset: Int, location: SourceLocation) {
        self.firstLine = firstLine
        self.columnOffset = columnOffset
        self.location = location
    }
}

/// metallb.io/v1beta1 IPAddressPool, or one pool of the legacy ConfigMap.
public struct IPAddressPool: Hashable, Sendable {
    public struct ServiceAllocation: Hashable, Sendable {
        public var priority: Int
        public var namespaces: [String]
        public var namespaceSelectors: [LabelSelector]
        public var serviceSelectors: [LabelSelector]

        public init(
            priority: Int = 0,
            namespaces: [String] = [],
            namespaceSelectors: [LabelSelector] = [],
            serviceSelectors: [LabelSelector] = []
        ) {
            self.priority = priority
            self.namespaces = namespaces
            self.namespaceSelectors = namespaceSelectors
            self.serviceSelectors = serviceSelectors
        }
    }

    public var metadata: ObjectMeta
    public var addresses: [String]
    /// Position of each entry of `addresses`.
    public var addressFields: [FieldReference]
    public var autoAssign: Bool
    public var avoidBuggyIPs: Bool
    public var serviceAllocation: ServiceAllocation?
    /// `layer2` or `bgp` for legacy ConfigMap pools; nil for IPAddressPool resources.
    public var legacyProtocol: String?

    public init(
        metadata: ObjectMeta,
        addresses: [String],
        addressFields: [FieldReference] = [],
        autoAssign: Bool = true,
        avoidBuggyIPs: Bool = false,
        serviceAllocation: ServiceAllocation? = nil,
        legacyProtocol: String? = nil
    ) {
        self.metadata = metadata
        self.addresses = addresses
        self.addressFields = addressFields
        self.autoAssign = autoAssign
        self.avoidBuggyIPs = avoidBuggyIPs
        self.serviceAllocation = serviceAllocation
        self.legacyProtocol = legacyProtocol
    }
}

/// metallb.io/v1beta1 L2Advertisement.
public struct L2Advertisement: Hashable, Sendable {
    public var metadata: ObjectMeta
    public var ipAddressPools: [String]
    public var ipAddressPoolSelectors: [LabelSelector]
    public var nodeSelectors: [LabelSelector]
    public var interfaces: [String]

    public init(
        metadata: ObjectMeta,
        ipAddressPools: [String] = [],
        ipAddressPoolSelectors: [LabelSelector] = [],
        nodeSelectors: [LabelSelector] = [],
        interfaces: [String] = []
    ) {
        self.metadata = metadata
        self.ipAddressPools = ipAddressPools
        self.ipAddressPoolSelectors = ipAddressPoolSelectors
        self.nodeSelectors = nodeSelectors
        self.interfaces = interfaces
    }
}

/// v1 Namespace (its labels feed MetalLB's namespaceSelectors).
public struct Namespace: Hashable, Sendable {
    public var metadata: ObjectMeta

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
    }
}
