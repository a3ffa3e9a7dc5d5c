public import PorticoAllocation
public import PorticoModel
public import PorticoRouting

/// What Portico would run for a set of manifests: a value, computed without side effects.
///
/// The JSON form (``PlanDocument``) is the external contract of `portico plan --format json`
/// and the admin endpoint's `/plan`.
public struct Plan: Sendable {
    public var allocations: [Allocation] = []
    /// Allocations of the previous lock that no longer hold, and why.
    public var releases: [Release] = []
    public var failures: [AllocationFailure] = []
    /// The allocations to record in the state directory (nil when no pool is configured).
    public var lock: AllocationLock?
    public var listeners: [Listener] = []
    /// The HTTP fronts: which listeners serve which IngressClass.
    public var fronts: [IngressFront] = []
    /// One route table per served IngressClass, by class name.
    public var routeTables: [String: RouteTable<BackendRoute>] = [:]
    /// Certificates per IngressClass, from the TLS sections of its Ingresses.
    public var certificates: [String: [ServedCertificate]] = [:]
    /// Client certificate verification per IngressClass, oldest Ingress first.
    public var clientAuthorities: [String: [ClientAuthority]] = [:]
    public var diagnostics: [Diagnostic] = []
    /// Network boot: profiles, groups, machines and the boot servers' configuration.
    public var netboot: NetbootPlan?
    /// The virtual routers of `virtualIPNode` (see ``VirtualIPPlanner``); empty unless computed.
    public var virtualIPs: [VirtualIPGroup] = []
    /// The node `virtualIPs` were computed for.
    public var virtualIPNode: String?

    public init() {}

    /// Whether the manifests are good enough to run (no errors).
    public var isValid: Bool { !diagnostics.containsErrors }
}

/// Addresses given to a LoadBalancer Service.
public struct Allocation: Sendable, Hashable, Codable {
    /// `namespace/name`.
    public var service: String
    public var ips: [String]
    /// The pool the addresses come from; empty when the addresses were given by hand and
    /// no pool contains them.
    public var pool: String
    /// True when the address was not in the previous lock.
    public var isNew: Bool

    public init(service: String, ips: [String], pool: String, isNew: Bool = false) {
        self.service = service
        self.ips = ips
        self.pool = pool
        self.isNew = isNew
    }
}

/// An allocation of the previous lock that is given up, and why.
public struct Release: Sendable, Hashable, Codable {
    public var service: String
    public var ips: [String]
    public var reason: String

    public init(service: String, ips: [String], reason: String) {
        self.service = service
        self.ips = ips
        self.reason = reason
    }
}

/// A LoadBalancer Service that got no address, and why.
public struct AllocationFailure: Sendable, Hashable, Codable {
    public var service: String
    public var reason: String

    public init(service: String, reason: String) {
        self.service = service
        self.reason = reason
    }
}

/// A socket Portico listens on.
public struct Listener: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case http
        case https
        case tcp
        case udp
    }

    public var address: String
    public var port: Int
    /// `TCP` or `UDP`.
    public var `protocol`: String
    public var kind: Kind
    /// `namespace/name` of the Service it belongs to.
    public var service: String
    /// The Service port it serves: where TCP/UDP traffic goes, or nil for HTTP fronts.
    public var servicePort: Int?
    /// For tcp/udp listeners: the ready endpoints (`ip:port`).
    public var endpoints: [String]
    /// PROXY protocol header sent to the endpoints (`v1`, `v2`), if any.
    public var proxyProtocol: String?
    /// Peers (CIDRs) whose connections start with a PROXY protocol header.
    public var acceptProxyProtocolFrom: [String]

    public init(
        address: String,
        port: Int,
        protocol: String,
        kind: Kind,
        service: String,
        servicePort: Int? = nil,
        endpoints: [String] = [],
        proxyProtocol: String? = nil,
        acceptProxyProtocolFrom: [String] = []
    ) {
        self.address = address
        self.port = port
        self.protocol = `protocol`
        self.kind = kind
        self.service = service
        self.servicePort = servicePort
        self.endpoints = endpoints
        self.proxyProtocol = proxyProtocol
        self.acceptProxyProtocolFrom = acceptProxyProtocolFrom
    }
}

/// A LoadBalancer Service that serves Ingresses of one class.
public struct IngressFront: Sendable, Hashable {
    public var service: String
    public var ingressClass: String
    public var listeners: [Listener]
    /// The certificate for clients whose SNI matches no Ingress TLS host
    /// (`portico.dev/default-certificate`), if set.
    public var defaultCertificate: ServedCertificate?
}

/// What a route sends requests to.
public struct BackendRoute: Sendable, Hashable {
    /// `namespace/name` of the Ingress that declared the route.
    public var ingress: String
    /// `namespace/name` of the Service; nil for unsupported resource backends (503).
    public var service: String?
    /// The backend port as the Ingress wrote it (number or name).
    public var port: String
    /// Ready endpoints (`ip:port`, IPv6 in brackets); empty means 503.
    public var endpoints: [String]
    public var policy: IngressPolicy
    /// The Ingress path that leads here (a regular expression on regex hosts; the pattern of
    /// `rewrite-target`); nil for a default backend.
    public var path: String?
    /// The Service's `portico.dev/health-check`, if any.
    public var healthCheck: HealthCheckSpec?
}

/// A certificate served by a class's HTTPS listeners.
public struct ServedCertificate: Sendable, Hashable {
    /// `namespace/name` of the Secret.
    public var secret: String
    /// The Ingress TLS hosts this certificate was named for.
    public var hosts: [String]
    /// DNS names of the certificate itself.
    public var dnsNames: [String]
    public var chainPEM: [UInt8]
    public var keyPEM: [UInt8]

    public init(secret: String, hosts: [String], dnsNames: [String], chainPEM: [UInt8], keyPEM: [UInt8]) {
        self.secret = secret
        self.hosts = hosts
        self.dnsNames = dnsNames
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
    }
}
