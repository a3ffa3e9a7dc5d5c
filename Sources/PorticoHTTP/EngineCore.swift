import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import PorticoRouting

/// One immutable generation of the engine's configuration, swapped atomically on reload.
final class EngineState: Sendable {
    let routes: RouteTable<HTTPRoute>
    let pools: [String: UpstreamPool]
    let limits: HTTPLimits
    let trustedProxies: [IPAddressRange]
    /// ``HTTPListener/acceptProxyProtocolFrom`` by listener (whose identity ignores it), so
    /// that a change applies to new connections without rebinding.
    let proxyProtocolPeers: [HTTPListener: [IPAddressRange]]
    let certificates: CertificateStore?
    /// Client TLS contexts of the pools that speak TLS to their endpoints, by pool id.
    let upstreamTLS: [String: UpstreamTLSContext]
    /// Server TLS contexts that ask for client certificates, by server name.
    let clientAuth: ServerNameMap<ClientAuthContext>
    /// TLS to `https://` auth services (not verified, as ingress-nginx's default).
    let forwardAuthTLS: NIOSSLContext?
    let accessLog: AccessLog?

    /// `serverTLS` makes the server TLS configuration of this engine (certificate by SNI,
    /// ALPN) from an initial certificate; authorities derive their contexts from it.
    /// `previous`: the generation this one replaces (its lane TLS contexts are kept for the
    /// same certificates, so sessions and tickets outlive a reload).
    init(
        _ configuration: HTTPEngineConfiguration,
        previous: EngineState? = nil,
        serverTLS: (CertificateStore.Entry) -> TLSConfiguration = { _ in .makeClientConfiguration() }
    ) throws {
        self.routes = configuration.routes
        self.accessLog = configuration.accessLog
        self.pools = configuration.pools
        self.limits = configuration.limits
        self.trustedProxies = configuration.trustedProxies
        var proxyProtocolPeers: [HTTPListener: [IPAddressRange]] = [:]
        for listener in configuration.listeners {
            proxyProtocolPeers[listener] = listener.acceptProxyProtocolFrom
        }
        self.proxyProtocolPeers = proxyProtocolPeers
        let needsTLS = configuration.listeners.contains { $0.kind == .https }
        if needsTLS || !configuration.certificates.isEmpty || configuration.defaultCertificate != nil {
            self.certificates = try CertificateStore(configuration, previous: previous?.certificates)
        } else {
            self.certificates = nil
        }
        var upstreamTLS: [String: UpstreamTLSContext] = [:]
        for (id, pool) in configuration.pools {
            guard let tls = pool.tls else { continue }
            var client = TLSConfiguration.makeClientConfiguration()
            client.minimumTLSVersion = .tlsv12
            client.applicationProtocols = pool.http2 ? ["h2"] : ["http/1.1"]
            if let roots = tls.trustRootsPEM {
                let certificates = try NIOSSLCertificate.fromPEMBytes(Array(roots.utf8))
                client.trustRoots = .certificates(certificates)
                client.certificateVerification = .fullVerification
            } else {
                client.certificateVerification = .none
            }
            upstreamTLS[id] = UpstreamTLSContext(
                context: try NIOSSLContext(configuration: client),
                serverName: tls.serverName
            )
        }
        self.upstreamTLS = upstreamTLS

        var clientAuth = ServerNameMap<ClientAuthContext>()
        if let store = self.certificates {
            for authority in configuration.clientCertificateAuthorities {
                var tls = serverTLS(store.fallback)
                switch authority.mode {
                case .required: tls.certificateVerification = .noHostnameVerification
                case .optional, .optionalNoCA: tls.certificateVerification = .optionalVerification
                }
                let verification: ClientAuthContext.Verification
                if let roots = authority.trustRootsPEM {
                    let certificates = try NIOSSLCertificate.fromPEMBytes(Array(roots.utf8))
                    guard !certificates.isEmpty else { throw HTTPEngineError.invalidCertificate(authority.serverNames) }
                    tls.trustRoots = .certificates(certificates)
                    // Names the acceptable CAs in the CertificateRequest, so clients pick the right certificate.
                    tls.sendCANameList = true
                    // Portico verifies the chain itself (BoringSSL has no depth limit for it to apply).
                    verification =
                        authority.mode == .optionalNoCA
                        ? .anyCertificate
                        : .chain(try ClientCertificateVerifier(trustRootsPEM: roots, depth: authority.verifyDepth))
                } else if authority.mode == .optionalNoCA {
                    verification = .anyCertificate
                } else {
                    throw HTTPEngineError.invalidCertificate(authority.serverNames)
                }
                let context = ClientAuthContext(
                    authority: authority.id,
                    context: try NIOSSLContext(configuration: tls),
                    verification: verification
                )
                for name in authority.serverNames { clientAuth.insertIfAbsent(context, for: name) }
            }
        }
        self.clientAuth = clientAuth
        let authOverTLS =
            configuration.routes.rules.contains { $0.target.forwardAuth?.tls == true }
            || configuration.routes.defaultTarget?.forwardAuth?.tls == true
        if authOverTLS {
            var client = TLSConfiguration.makeClientConfiguration()
            client.minimumTLSVersion = .tlsv12
            client.certificateVerification = .none
            client.applicationProtocols = ["http/1.1"]
            self.forwardAuthTLS = try NIOSSLContext(configuration: client)
        } else {
            self.forwardAuthTLS = nil
        }
    }
}

/// A built client TLS context for one upstream pool.
struct UpstreamTLSContext: Sendable {
    let context: NIOSSLContext
    let serverName: String?
}

/// What every connection handler shares with the engine.
final class EngineCore: Sendable {
    private let stateBox: NIOLockedValueBox<EngineState>
    let upstreamPools: UpstreamPoolRegistry
    let logger: Logger
    let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    let openConnections: Meter
    let handshakes: HandshakeCounters
    /// Per-client counters of the routes' rate limits; they outlive reloads.
    let rateLimiter = RateLimiter()
    /// Active health checks of the pools that ask for them.
    let healthChecker: HealthChecker
    /// Connections the fast lane handed over whose channel is not set up yet.
    let handoversInFlight = NIOLockedValueBox(0)
    let metricsFactory: any MetricsFactory

    init(logger: Logger, state: EngineState, metricsFactory: any MetricsFactory, group: any EventLoopGroup) {
        self.logger = logger
        self.healthChecker = HealthChecker(group: group, logger: logger, metricsFactory: metricsFactory)
        self.metricsFactory = metricsFactory
        self.stateBox = NIOLockedValueBox(state)
        self.upstreamPools = UpstreamPoolRegistry(metricsFactory: metricsFactory)
        self.openConnections = Meter(label: MetricNames.openConnections, dimensions: [], factory: metricsFactory)
        self.handshakes = HandshakeCounters(factory: metricsFactory)
    }

    /// The current generation (one uncontended lock per request).
    var state: EngineState {
        self.stateBox.withLockedValue { $0 }
    }

    func replaceState(_ state: EngineState) {
        self.stateBox.withLockedValue { $0 = state }
    }
}

/// Parsed certificates and the SNI lookup: exact name, then wildcard, then default.
final class CertificateStore: Sendable {
    struct Entry: Sendable {
        let chain: [NIOSSLCertificateSource]
        let key: NIOSSLPrivateKeySource
        #if os(Linux)
        /// The same certificate for the fast lane's TLS (nil when BoringSSL refused it: those
        /// handshakes stay on NIO).
        let lane: LaneTLSContext?
        #endif
    }

    let names: ServerNameMap<Entry>
    let fallback: Entry
    #if os(Linux)
    /// The fast lane's contexts by certificate and key PEM (kept across reloads).
    private let laneContexts: [String: LaneTLSContext]
    #endif

    init(_ configuration: HTTPEngineConfiguration, previous: CertificateStore? = nil) throws {
        #if os(Linux)
        var laneContexts: [String: LaneTLSContext] = [:]
        #endif
        func load(_ certificate: TLSCertificate) throws -> Entry {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificateChainPEM.utf8))
            guard !chain.isEmpty else { throw HTTPEngineError.invalidCertificate(certificate.serverNames) }
            let key = try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem)
            #if os(Linux)
            // (A certificate BoringSSL refuses here, NIOSSL accepted: its handshakes stay NIO's.)
            let pem = certificate.certificateChainPEM + certificate.privateKeyPEM
            let lane =
                laneContexts[pem] ?? previous?.laneContexts[pem]
                ?? (try? LaneTLSContext(chainPEM: certificate.certificateChainPEM, keyPEM: certificate.privateKeyPEM))
            laneContexts[pem] = lane
            return Entry(chain: chain.map { .certificate($0) }, key: .privateKey(key), lane: lane)
            #else
            return Entry(chain: chain.map { .certificate($0) }, key: .privateKey(key))
            #endif
        }
        var names = ServerNameMap<Entry>()
        for certificate in configuration.certificates {
            let entry = try load(certificate)
            for name in certificate.serverNames { names.insertIfAbsent(entry, for: name) }
        }
        if let certificate = configuration.defaultCertificate {
            self.fallback = try load(certificate)
        } else if let first = configuration.certificates.first {
            self.fallback = try load(first)
        } else {
            // No certificate at all: the process's self-signed one (ingress-nginx's fake certificate).
            self.fallback = try load(SelfSignedCertificate.processWide())
        }
        self.names = names
        #if os(Linux)
        self.laneContexts = laneContexts
        #endif
    }

    func select(serverName: String?) -> Entry {
        self.names.lookup(serverName) ?? self.fallback
    }
}

/// Errors of ``HTTPEngine/apply(_:)``.
public enum HTTPEngineError: Error, CustomStringConvertible {
    /// A PEM chain held no certificate.
    case invalidCertificate([String])
    /// A listener address is not an IP address.
    case invalidListenerAddress(String)

    public var description: String {
        switch self {
        case .invalidCertificate(let names):
            return "the certificate chain for \(names) holds no certificate"
        case .invalidListenerAddress(let address):
            return "listener address \"\(address)\" is not an IP address"
        }
    }
}
