/// Portico's own annotations.
public enum Annotations {
    /// On a LoadBalancer Service: serve the Ingresses of this IngressClass on its addresses.
    public static let ingressClass = "portico.dev/ingress-class"
    /// On a Service: send a PROXY protocol header (`v1` or `v2`; UDP: `v2` only) to its endpoints.
    public static let proxyProtocol = "portico.dev/proxy-protocol"
    /// On a LoadBalancer Service: comma-separated CIDRs (a router in front) whose connections
    /// start with a PROXY protocol header carrying the real client address.
    public static let acceptProxyProtocolFrom = "portico.dev/accept-proxy-protocol-from"
    /// On an ingress front: `namespace/name` of the `kubernetes.io/tls` Secret served to
    /// clients whose SNI matches no Ingress TLS host (else the oldest Ingress's certificate).
    public static let defaultCertificate = "portico.dev/default-certificate"
    /// On a Service behind Ingresses: probe its endpoints actively, `tcp` (a connect) or
    /// `http:/PATH` (a GET answered 2xx or 3xx); failing endpoints are tried last.
    public static let healthCheck = "portico.dev/health-check"
    /// Seconds between two probes of one endpoint (default 5).
    public static let healthCheckInterval = "portico.dev/health-check-interval"
    /// On a LoadBalancer Service: the VRRP VRID (1-255) of its virtual addresses.
    public static let vrrpVirtualRouterID = "portico.dev/vrrp-vrid"
    /// On a LoadBalancer Service: the node (`--node`) that should hold its addresses.
    public static let vrrpPreferredNode = "portico.dev/vrrp-preferred-node"
    /// Every Portico annotation on Services, for typo detection.
    public static let serviceAnnotations: Set<String> = [
        ingressClass, proxyProtocol, acceptProxyProtocolFrom, defaultCertificate, healthCheck, healthCheckInterval,
        vrrpVirtualRouterID, vrrpPreferredNode,
    ]
}

/// An active health check asked for by `portico.dev/health-check`.
public struct HealthCheckSpec: Hashable, Sendable, Codable {
    /// nil: a TCP connect; else the path of an HTTP GET.
    public var httpPath: String?
    public var intervalSeconds: Int

    public init(httpPath: String?, intervalSeconds: Int) {
        self.httpPath = httpPath
        self.intervalSeconds = intervalSeconds
    }

    /// Parses the annotations of a Service; nil without `portico.dev/health-check`, or when a
    /// value is invalid (the validator reports why, see ``problems(_:)``).
    public static func of(_ annotations: [String: String]) -> HealthCheckSpec? {
        guard let value = annotations[Annotations.healthCheck], Self.problems(annotations).isEmpty else { return nil }
        let interval = annotations[Annotations.healthCheckInterval].flatMap { Int($0) } ?? 5
        return HealthCheckSpec(
            httpPath: value == "tcp" ? nil : String(value.dropFirst("http:".count)),
            intervalSeconds: interval
        )
    }

    /// What is wrong with the health check annotations, by annotation name.
    public static func problems(_ annotations: [String: String]) -> [(annotation: String, message: String)] {
        var result: [(String, String)] = []
        if let value = annotations[Annotations.healthCheck] {
            let isHTTP = value.hasPrefix("http:/") && !value.contains(where: { $0.isWhitespace })
            if value != "tcp" && !isHTTP {
                result.append((Annotations.healthCheck, "\"\(value)\" must be tcp or http:/PATH, e.g. http:/healthz"))
            }
        }
        if let value = annotations[Annotations.healthCheckInterval] {
            if Int(value).map({ (1...3600).contains($0) }) != true {
                result.append(
                    (Annotations.healthCheckInterval, "\"\(value)\" must be a number of seconds from 1 to 3600")
                )
            } else if annotations[Annotations.healthCheck] == nil {
                result.append((Annotations.healthCheckInterval, "has no effect without \(Annotations.healthCheck)"))
            }
        }
        return result
    }
}
