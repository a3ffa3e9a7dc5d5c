import PorticoModel
import PorticoRouting

/// The JSON form of a plan: the external contract of `portico plan --format json` and `/plan`.
public struct PlanDocument: Codable, Sendable, Equatable {
    public struct Route: Codable, Sendable, Equatable {
        public var ingressClass: String
        public var host: String
        public var path: String
        public var pathType: String
        /// `namespace/name`, or empty for an unsupported resource backend.
        public var service: String
        public var port: String
        public var endpoints: [String]
        public var ingress: String
        /// True for the class's default backend (host and path empty).
        public var isDefault: Bool

        enum CodingKeys: String, CodingKey {
            case ingressClass = "class"
            case host, path, pathType, service, port, endpoints, ingress
            case isDefault = "default"
        }
    }

    public struct DiagnosticEntry: Codable, Sendable, Equatable {
        public var file: String
        public var line: Int
        public var column: Int
        public var severity: String
        public var message: String
    }

    public var allocations: [Allocation]
    public var releases: [Release]
    public var failures: [AllocationFailure]
    public var listeners: [Listener]
    public var routes: [Route]
    public var diagnostics: [DiagnosticEntry]
    /// Network boot, when the manifests have netboot resources.
    public var netboot: NetbootDocument?
    /// The node the virtual IPs are for, and its virtual routers (with state and owner at run time).
    public var node: String?
    public var virtualIPs: [VirtualIPGroup]

    public init(_ plan: Plan) {
        netboot = plan.netboot.map(NetbootDocument.init)
        allocations = plan.allocations
        releases = plan.releases
        failures = plan.failures
        listeners = plan.listeners
        node = plan.virtualIPNode
        virtualIPs = plan.virtualIPs
        routes = []
        for (className, table) in plan.routeTables.sorted(by: { $0.key < $1.key }) {
            for rule in table.rules {
                routes.append(
                    Route(
                        ingressClass: className,
                        host: rule.host.text,
                        path: rule.path,
                        pathType: rule.pathType.rawValue,
                        service: rule.target.service ?? "",
                        port: rule.target.port,
                        endpoints: rule.target.endpoints,
                        ingress: rule.target.ingress,
                        isDefault: false
                    )
                )
            }
            if let target = table.defaultTarget {
                routes.append(
                    Route(
                        ingressClass: className,
                        host: "",
                        path: "",
                        pathType: "",
                        service: target.service ?? "",
                        port: target.port,
                        endpoints: target.endpoints,
                        ingress: target.ingress,
                        isDefault: true
                    )
                )
            }
        }
        diagnostics = plan.diagnostics.map {
            DiagnosticEntry(
                file: $0.location.file,
                line: $0.location.line,
                column: $0.location.column,
                severity: $0.severity.rawValue,
                message: $0.message
            )
        }
    }
}
