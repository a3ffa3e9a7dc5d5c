import NIOCore
import PorticoHTTP
import PorticoL4
import PorticoModel
import PorticoPlan
import PorticoRouting

/// Turns the plan's HTTP part into one engine configuration per IngressClass: each class
/// has its own listeners, certificates and route table.
enum PlanApplication {
    static func engineConfigurations(
        _ plan: Plan,
        limits: HTTPLimits = HTTPLimits()
    ) -> [String: HTTPEngineConfiguration] {
        var result: [String: HTTPEngineConfiguration] = [:]
        var classes = Set(plan.fronts.map(\.ingressClass))
        classes.formUnion(plan.routeTables.keys)
        for className in classes.sorted() {
            let listeners = plan.fronts.filter { $0.ingressClass == className }.flatMap(\.listeners).map {
                HTTPListener(
                    address: $0.address,
                    port: $0.port,
                    kind: $0.kind == .https ? .https : .http,
                    // Validated by the model; a bare address becomes a /32 or /128.
                    acceptProxyProtocolFrom: $0.acceptProxyProtocolFrom.compactMap(IPAddressRange.init)
                )
            }
            // A class with routes but no front has nothing to listen on.
            if listeners.isEmpty { continue }
            var pools: [String: UpstreamPool] = [:]
            let table = plan.routeTables[className] ?? RouteTable()
            let routes = table.mapTargets { backend -> HTTPRoute in
                let policy = backend.policy
                // backend-protocol HTTPS (or GRPCS): TLS to the endpoints, unverified as in ingress-nginx.
                let tls = policy.backendProtocol == .https || policy.backendProtocol == .grpcs ? UpstreamTLS() : nil
                let http2 = policy.backendProtocol == .grpc || policy.backendProtocol == .grpcs
                let poolID =
                    "\(backend.service ?? "resource:" + backend.port):\(backend.port)\(tls == nil ? "" : "+tls")\(http2 ? "+h2" : "")"
                pools[poolID] = UpstreamPool(
                    endpoints: backend.endpoints.compactMap(endpoint),
                    tls: tls,
                    healthCheck: backend.healthCheck.map {
                        HealthCheck(
                            kind: $0.httpPath.map { .http(path: $0) } ?? .tcp,
                            interval: .seconds(Int64($0.intervalSeconds))
                        )
                    },
                    http2: http2
                )
                return HTTPRoute(
                    service: backend.service ?? "(resource \(backend.port))",
                    ingress: backend.ingress,
                    pool: poolID,
                    sslRedirect: policy.sslRedirect || policy.forceSSLRedirect,
                    permanentRedirect: policy.permanentRedirect,
                    permanentRedirectCode: policy.permanentRedirectCode,
                    maxBodySize: policy.maximumBodySize,
                    connectTimeout: .seconds(Int64(policy.connectTimeoutSeconds)),
                    readTimeout: .seconds(Int64(policy.readTimeoutSeconds)),
                    sendTimeout: .seconds(Int64(policy.sendTimeoutSeconds)),
                    // Validated by the model; a bare address becomes a /32 or /128.
                    allowedSources: policy.allowedSourceRanges.compactMap(IPAddressRange.init),
                    clientCertificate: policy.clientCertificate.map(ClientAuthority.id(of:)),
                    rateLimit: rateLimit(policy, ingress: backend.ingress),
                    // The pattern is valid: the plan refuses a table with an invalid one.
                    rewrite: policy.rewriteTarget.flatMap { target in
                        backend.path.flatMap { try? PathPattern($0) }.map { PathRewrite(pattern: $0, target: target) }
                    },
                    appRoot: policy.appRoot,
                    forwardAuth: policy.authURL.flatMap {
                        ForwardAuth(url: $0, signin: policy.authSignin, responseHeaders: policy.authResponseHeaders)
                    },
                    loadBalancing: policy.loadBalance == "ewma" ? .leastRequests : .roundRobin,
                    affinity: policy.affinityCookie.map {
                        CookieAffinity(
                            name: $0,
                            path: policy.affinityCookiePath ?? "/",
                            maxAge: policy.affinityCookieMaxAge
                        )
                    }
                )
            }
            let certificates = (plan.certificates[className] ?? []).map { served in
                TLSCertificate(
                    serverNames: unique(served.hosts + served.dnsNames),
                    certificateChainPEM: String(decoding: served.chainPEM, as: UTF8.self),
                    privateKeyPEM: String(decoding: served.keyPEM, as: UTF8.self)
                )
            }
            // The front's portico.dev/default-certificate, else the oldest Ingress's certificate,
            // answers clients whose SNI matches no TLS host.
            let configuredDefault = plan.fronts.first { $0.ingressClass == className && $0.defaultCertificate != nil }?
                .defaultCertificate.map {
                    TLSCertificate(
                        serverNames: $0.dnsNames,
                        certificateChainPEM: String(decoding: $0.chainPEM, as: UTF8.self),
                        privateKeyPEM: String(decoding: $0.keyPEM, as: UTF8.self)
                    )
                }
            let authorities = (plan.clientAuthorities[className] ?? []).compactMap { authority in
                ClientCertificateAuthority.Mode(rawValue: authority.mode).map { mode in
                    ClientCertificateAuthority(
                        id: authority.id,
                        serverNames: authority.hosts,
                        mode: mode,
                        trustRootsPEM: authority.caPEM.isEmpty ? nil : String(decoding: authority.caPEM, as: UTF8.self),
                        verifyDepth: authority.depth
                    )
                }
            }
            result[className] = HTTPEngineConfiguration(
                listeners: listeners,
                certificates: certificates,
                defaultCertificate: configuredDefault ?? certificates.first,
                routes: routes,
                pools: pools,
                limits: limits,
                clientCertificateAuthorities: authorities
            )
        }
        return result
    }

    /// ingress-nginx keeps one set of counters per Ingress.
    static func rateLimit(_ policy: IngressPolicy, ingress: String) -> RateLimit? {
        guard policy.limitRPS != nil || policy.limitRPM != nil || policy.limitConnections != nil else { return nil }
        return RateLimit(
            id: ingress,
            requestsPerSecond: policy.limitRPS,
            requestsPerMinute: policy.limitRPM,
            connections: policy.limitConnections,
            exempt: policy.limitExemptRanges.compactMap(IPAddressRange.init)
        )
    }

    /// The plan's tcp and udp listeners as the L4 engine's configuration.
    static func l4Configuration(_ plan: Plan) -> L4Configuration {
        var configuration = L4Configuration()
        for listener in plan.listeners {
            let endpoints = listener.endpoints.compactMap(hostPort).map { L4Endpoint(host: $0.host, port: $0.port) }
            let proxyProtocol = listener.proxyProtocol.flatMap(ProxyProtocolVersion.init(rawValue:))
            switch listener.kind {
            case .tcp:
                configuration.tcp.append(
                    TCPForward(
                        address: listener.address,
                        port: listener.port,
                        service: listener.service,
                        endpoints: endpoints,
                        sendProxyProtocol: proxyProtocol,
                        acceptProxyProtocolFrom: listener.acceptProxyProtocolFrom
                    )
                )
            case .udp:
                configuration.udp.append(
                    UDPForward(
                        address: listener.address,
                        port: listener.port,
                        service: listener.service,
                        endpoints: endpoints,
                        sendProxyProtocol: proxyProtocol
                    )
                )
            case .http, .https:
                break
            }
        }
        return configuration
    }

    /// `10.0.0.1:80` or `[fd00::1]:80`.
    static func endpoint(_ text: String) -> UpstreamEndpoint? {
        hostPort(text).map { UpstreamEndpoint(host: $0.host, port: $0.port) }
    }

    static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (String(host), port)
    }

    private static func unique(_ names: [String]) -> [String] {
        var seen: Set<String> = []
        return names.filter { seen.insert($0).inserted }
    }
}
