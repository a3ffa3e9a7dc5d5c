/// What a LoadBalancer Service asks of the allocator: the parts of a Kubernetes Service (and its
/// `metallb.io/` annotations) that allocation depends on.
public struct ServiceRequest: Hashable, Sendable {
    /// The namespace.
    public var namespace: String
    /// The Service's name.
    public var name: String
    /// The Service's labels (for `serviceAllocation.serviceSelectors`).
    public var labels: [String: String]
    /// Whether `spec.type` is `LoadBalancer`; other Services get no address.
    public var isLoadBalancer: Bool
    /// Specific addresses from `metallb.io/loadBalancerIPs` or `spec.loadBalancerIP`.
    public var requestedAddresses: RequestedAddresses
    /// `metallb.io/address-pool`.
    public var requestedPool: String?
    /// `metallb.io/allow-shared-ip`; nil (or empty) means the address is not shared.
    public var sharingKey: String? {
        didSet { if sharingKey == "" { sharingKey = nil } }
    }
    /// `spec.externalTrafficPolicy`.
    public var externalTrafficPolicy: ExternalTrafficPolicy
    /// `spec.selector`; with the Local policy it is the backend key that sharing compares.
    public var selector: [String: String]
    /// The (protocol, port) pairs of `spec.ports`.
    public var ports: [ServicePort]
    /// `spec.ipFamilies`, primary first; may be empty when no API server filled it in.
    public var ipFamilies: [IPFamily]
    /// `spec.ipFamilyPolicy`.
    public var ipFamilyPolicy: IPFamilyPolicy

    /// A request; only the namespace and name are required.
    public init(
        namespace: String,
        name: String,
        labels: [String: String] = [:],
        isLoadBalancer: Bool = true,
        requestedAddresses: RequestedAddresses = .none,
        requestedPool: String? = nil,
        sharingKey: String? = nil,
        externalTrafficPolicy: ExternalTrafficPolicy = .cluster,
        selector: [String: String] = [:],
        ports: [ServicePort] = [],
        ipFamilies: [IPFamily] = [],
        ipFamilyPolicy: IPFamilyPolicy = .singleStack
    ) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.isLoadBalancer = isLoadBalancer
        self.requestedAddresses = requestedAddresses
        self.requestedPool = requestedPool
        self.sharingKey = sharingKey == "" ? nil : sharingKey
        self.externalTrafficPolicy = externalTrafficPolicy
        self.selector = selector
        self.ports = ports
        self.ipFamilies = ipFamilies
        self.ipFamilyPolicy = ipFamilyPolicy
    }

    /// `namespace/name`.
    public var key: ServiceKey { ServiceKey(namespace: namespace, name: name) }

    /// MetalLB's backend key: `""` for the Cluster policy; for Local, the selector written
    /// `k=v,k2=v2` with keys sorted, so Local Services share only with identical selectors.
    public var backendKey: String {
        guard externalTrafficPolicy == .local else { return "" }
        return selector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// A Service's `spec.externalTrafficPolicy`.
public enum ExternalTrafficPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// Any node forwards to any endpoint (client addresses are rewritten).
    case cluster = "Cluster"
    /// Only nodes running an endpoint take traffic (client addresses are kept).
    case local = "Local"
}

/// The specific addresses a Service asks for.
public enum RequestedAddresses: Hashable, Sendable {
    /// No specific address: allocate automatically (possibly from `metallb.io/address-pool`).
    case none
    /// These addresses, as written (the allocator parses and checks them, rule 2).
    case addresses([String])
    /// Both `metallb.io/loadBalancerIPs` and `spec.loadBalancerIP` are set, which is an error.
    case conflicting(annotation: String, loadBalancerIP: String)

    /// Merges the annotation (comma-separated, spaces allowed) and `spec.loadBalancerIP`; empty
    /// values count as unset.
    public static func merge(annotation: String?, loadBalancerIP: String?) -> RequestedAddresses {
        let fromAnnotation =
            (annotation ?? "").split(separator: ",").map {
                String($0.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
            }.filter { !$0.isEmpty }
        let single = (loadBalancerIP ?? "").filter { $0 != " " }
        switch (fromAnnotation.isEmpty, single.isEmpty) {
        case (true, true): return .none
        case (false, true): return .addresses(fromAnnotation)
        case (true, false): return .addresses([single])
        case (false, false): return .conflicting(annotation: annotation ?? "", loadBalancerIP: single)
        }
    }
}
