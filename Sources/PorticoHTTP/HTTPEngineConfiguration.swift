public import NIOCore
public import PorticoRouting

/// Everything the HTTP engine serves: listeners, certificates, routes, upstream pools and limits.
///
/// A configuration is a value. ``HTTPEngine/apply(_:)`` swaps it in atomically: new requests see
/// the new routes, pools and certificates; established connections finish undisturbed.
public struct HTTPEngineConfiguration: Sendable {
    /// The sockets to listen on.
    public var listeners: [HTTPListener]
    /// Certificates offered on TLS listeners, chosen by SNI.
    public var certificates: [TLSCertificate]
    /// The certificate used when SNI matches nothing (or is absent). Without it, the first of
    /// ``certificates``; without any certificate, ``SelfSignedCertificate/processWide()``.
    public var defaultCertificate: TLSCertificate?
    /// Host + path -> route.
    public var routes: RouteTable<HTTPRoute>
    /// Upstream pool id -> endpoints.
    public var pools: [String: UpstreamPool]
    /// Timeouts and size limits that apply to every connection.
    public var limits: HTTPLimits
    /// Peers whose incoming `X-Forwarded-*` / `X-Real-IP` headers are trusted and extended.
    public var trustedProxies: [IPAddressRange]
    /// Offer `h2` by ALPN on TLS listeners. Read when the first TLS listener is created.
    public var enableHTTP2: Bool
    /// Where a line per request goes; nil = no access log.
    public var accessLog: AccessLog?
    /// Server names whose TLS handshakes ask for a client certificate (ingress-nginx
    /// `auth-tls-*`). Routes name the authority they need in ``HTTPRoute/clientCertificate``.
    public var clientCertificateAuthorities: [ClientCertificateAuthority]

    /// Creates a configuration.
    public init(
        listeners: [HTTPListener] = [],
        certificates: [TLSCertificate] = [],
        defaultCertificate: TLSCertificate? = nil,
        routes: RouteTable<HTTPRoute> = RouteTable(),
        pools: [String: UpstreamPool] = [:],
        limits: HTTPLimits = HTTPLimits(),
        trustedProxies: [IPAddressRange] = [],
        enableHTTP2: Bool = true,
        clientCertificateAuthorities: [ClientCertificateAuthority] = [],
        accessLog: AccessLog? = nil
    ) {
        self.listeners = listeners
        self.certificates = certificates
        self.defaultCertificate = defaultCertificate
        self.routes = routes
        self.pools = pools
        self.limits = limits
        self.trustedProxies = trustedProxies
        self.enableHTTP2 = enableHTTP2
        self.clientCertificateAuthorities = clientCertificateAuthorities
        self.accessLog = accessLog
    }
}

/// Client certificate verification for some server names (ingress-nginx `auth-tls-verify-client`
/// with `auth-tls-secret`).
///
/// The TLS context is chosen by SNI before the handshake: a client whose SNI names one of
/// ``serverNames`` is asked for a certificate and verified against ``trustRootsPEM``. Because SNI
/// and the Host header can differ, every route protected by an authority also checks that its
/// connection was verified by that same authority (421 otherwise; see ``HTTPRoute/clientCertificate``).
public struct ClientCertificateAuthority: Sendable, Hashable {
    /// How a client certificate is asked for.
    public enum Mode: String, Sendable, Hashable {
        /// `on`: a certificate signed by the CA is required; the handshake fails without one.
        case required = "on"
        /// `optional`: verified against the CA when presented; absent is allowed.
        case optional
        /// `optional_no_ca`: asked for and passed on, not verified against any CA.
        case optionalNoCA = "optional_no_ca"
    }

    /// Identity tying routes to this authority (e.g. the Secret's `namespace/name` and mode).
    public var id: String
    /// Exact names or one-label wildcards (`*.example.com`).
    public var serverNames: [String]
    public var mode: Mode
    /// PEM CA certificates; required unless ``mode`` is ``Mode/optionalNoCA``.
    public var trustRootsPEM: String?
    /// Most CA certificates above the client's certificate, the one of ``trustRootsPEM``
    /// included (ingress-nginx `auth-tls-verify-depth`, as OpenSSL counts it): 1 means
    /// signed directly by a certificate of ``trustRootsPEM``.
    public var verifyDepth: Int

    /// Creates an authority.
    public init(id: String, serverNames: [String], mode: Mode, trustRootsPEM: String?, verifyDepth: Int = 1) {
        self.id = id
        self.serverNames = serverNames
        self.mode = mode
        self.trustRootsPEM = trustRootsPEM
        self.verifyDepth = verifyDepth
    }
}

/// One listening socket.
public struct HTTPListener: Sendable, Hashable {
    /// Plain HTTP or TLS.
    public enum Kind: String, Sendable, Hashable {
        /// Plain HTTP/1.1.
        case http
        /// TLS, then HTTP/2 or HTTP/1.1 by ALPN.
        case https
    }

    /// The IP address to bind (`127.0.0.1`, `::`, a load-balancer IP).
    public var address: String
    /// The TCP port; 0 picks a free one (see ``HTTPEngine/boundListeners``).
    public var port: Int
    /// Plain or TLS.
    public var kind: Kind
    /// Peers (load balancers, routers) whose connections start with a PROXY protocol header
    /// (v1 or v2, before TLS); its source address becomes the client address (X-Forwarded-For,
    /// X-Real-IP, allowed source ranges). Such a peer must send the header: without one, or
    /// with a malformed one, the connection is closed. Other peers are not parsed.
    ///
    /// Not part of the listener's identity (``==`` and ``hash(into:)`` ignore it): a change
    /// keeps the socket bound and applies to connections accepted after the reload.
    public var acceptProxyProtocolFrom: [IPAddressRange]

    /// Creates a listener.
    public init(address: String, port: Int, kind: Kind, acceptProxyProtocolFrom: [IPAddressRange] = []) {
        self.address = address
        self.port = port
        self.kind = kind
        self.acceptProxyProtocolFrom = acceptProxyProtocolFrom
    }

    /// Same address, port and kind (the bound socket's identity).
    public static func == (lhs: HTTPListener, rhs: HTTPListener) -> Bool {
        lhs.address == rhs.address && lhs.port == rhs.port && lhs.kind == rhs.kind
    }

    /// Hashes address, port and kind.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.address)
        hasher.combine(self.port)
        hasher.combine(self.kind)
    }
}

/// A certificate chain and key, and the server names it answers for.
public struct TLSCertificate: Sendable {
    /// Exact names (`app.example.com`) or wildcards (`*.example.com`, one label).
    public var serverNames: [String]
    /// PEM certificate chain, leaf first.
    public var certificateChainPEM: String
    /// PEM private key.
    public var privateKeyPEM: String

    /// Creates a certificate entry.
    public init(serverNames: [String], certificateChainPEM: String, privateKeyPEM: String) {
        self.serverNames = serverNames
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
    }
}

/// Where a request goes and the per-route policy applied on the way.
///
/// A class (immutable): a route lookup on the request path hands out one reference instead of
/// copying ~20 fields and retaining each of their strings and arrays.
public final class HTTPRoute: Sendable {
    /// The backing Service, `namespace/name` (used in messages and metrics).
    public let service: String
    /// The Ingress that declared the route, `namespace/name` (metrics); "" when unknown.
    public let ingress: String
    /// The key of the upstream pool in ``HTTPEngineConfiguration/pools``.
    public let pool: String
    /// Answer plain-HTTP requests with a 308 to `https://` (ingress-nginx `ssl-redirect`).
    public let sslRedirect: Bool
    /// Answer every request with a redirect to this URL (ingress-nginx `permanent-redirect`).
    public let permanentRedirect: String?
    /// Status of the permanent redirect (301 by default).
    public let permanentRedirectCode: Int
    /// Largest request body accepted; larger gets 413. `nil` = unlimited (`proxy-body-size: 0`).
    public let maxBodySize: Int?
    /// Connect timeout to an upstream endpoint (`proxy-connect-timeout`).
    public let connectTimeout: TimeAmount
    /// Longest wait between two reads from the upstream (`proxy-read-timeout`); exceeded -> 504.
    public let readTimeout: TimeAmount
    /// Longest wait between two writes of the request to the upstream while it is being sent
    /// (`proxy-send-timeout`); exceeded -> 504 (or the connection closes once a response started).
    public let sendTimeout: TimeAmount
    /// Client addresses allowed to use the route (ingress-nginx `whitelist-source-range` /
    /// `allowlist-source-range`); others get 403. Empty = everyone. The client is the
    /// connection's peer address, also behind a trusted proxy (`X-Forwarded-For` is not consulted).
    public let allowedSources: [IPAddressRange]
    /// The ``ClientCertificateAuthority/id`` whose verification this route needs: a request on
    /// a connection not verified by it gets 421 (TLS; the client used another SNI) or 403 (plain
    /// HTTP). The upstream receives `ssl-client-verify: SUCCESS` or `NONE`.
    public let clientCertificate: String?
    /// Per-client request rate and concurrency limits; excess gets 429.
    public let rateLimit: RateLimit?
    /// The path sent upstream instead of the request's (ingress-nginx `rewrite-target`).
    public let rewrite: PathRewrite?
    /// A request for `/` is redirected (302) to this path (ingress-nginx `app-root`).
    public let appRoot: String?
    /// An auth service asked before proxying (ingress-nginx `auth-url`).
    public let forwardAuth: ForwardAuth?
    /// Round robin (default) or least requests in progress.
    public let loadBalancing: LoadBalancing
    /// Sticky sessions by cookie (ingress-nginx `affinity: cookie`).
    public let affinity: CookieAffinity?

    /// Creates a route target.
    public init(
        service: String,
        ingress: String = "",
        pool: String,
        sslRedirect: Bool = false,
        permanentRedirect: String? = nil,
        permanentRedirectCode: Int = 301,
        maxBodySize: Int? = 1024 * 1024,
        connectTimeout: TimeAmount = .seconds(5),
        readTimeout: TimeAmount = .seconds(60),
        sendTimeout: TimeAmount = .seconds(60),
        allowedSources: [IPAddressRange] = [],
        clientCertificate: String? = nil,
        rateLimit: RateLimit? = nil,
        rewrite: PathRewrite? = nil,
        appRoot: String? = nil,
        forwardAuth: ForwardAuth? = nil,
        loadBalancing: LoadBalancing = .roundRobin,
        affinity: CookieAffinity? = nil
    ) {
        self.service = service
        self.ingress = ingress
        self.pool = pool
        self.sslRedirect = sslRedirect
        self.permanentRedirect = permanentRedirect
        self.permanentRedirectCode = permanentRedirectCode
        self.maxBodySize = maxBodySize
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.sendTimeout = sendTimeout
        self.allowedSources = allowedSources
        self.clientCertificate = clientCertificate
        self.rateLimit = rateLimit
        self.rewrite = rewrite
        self.appRoot = appRoot
        self.forwardAuth = forwardAuth
        self.loadBalancing = loadBalancing
        self.affinity = affinity
    }
}

/// ingress-nginx `rewrite-target`: when the route's path pattern matches the request path, the
/// upstream gets `target` with `$1`...`$9` replaced by the pattern's capture groups (the whole
/// path is replaced, as nginx's `rewrite` does); the query string is kept unless the target
/// has its own.
public struct PathRewrite: Sendable {
    public var pattern: PathPattern
    public var target: String

    /// Creates a rewrite.
    public init(pattern: PathPattern, target: String) {
        self.pattern = pattern
        self.target = target
    }

    /// The rewritten request target for `uri` (path and query), or nil when the pattern does not match.
    public func apply(to uri: String) -> String? {
        let query = uri.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = query.map { uri[..<$0] } ?? uri[...]
        guard let groups = self.pattern.captures(in: path) else { return nil }
        var result = ""
        var characters = self.target[...]
        while let dollar = characters.firstIndex(of: "$") {
            result += characters[..<dollar]
            let next = characters.index(after: dollar)
            if next < characters.endIndex, let digit = characters[next].wholeNumberValue {
                if digit < groups.count { result += groups[digit] }
                characters = characters[characters.index(after: next)...]
            } else {
                result += "$"
                characters = characters[next...]
            }
        }
        result += characters
        if result.isEmpty || !result.hasPrefix("/") { result = "/" + result }
        if let query, !result.contains("?") { result += uri[query...] }
        return result
    }
}

/// The endpoints behind one route target (a Service port's ready endpoints).
public struct UpstreamPool: Sendable {
    /// Endpoints, tried round robin.
    public var endpoints: [UpstreamEndpoint]
    /// TLS to the endpoints (ingress-nginx `backend-protocol: HTTPS`); `nil` = plain HTTP/1.1.
    public var tls: UpstreamTLS?
    /// Active probing of the endpoints; those failing it are tried last.
    public var healthCheck: HealthCheck?
    /// Speak HTTP/2 to the endpoints, one stream per request on one connection per endpoint
    /// and event loop (ingress-nginx `backend-protocol: GRPC`, or `GRPCS` with ``tls``):
    /// prior knowledge in plain text, ALPN `h2` over TLS. Trailers pass both ways.
    public var http2: Bool

    /// Creates a pool.
    public init(
        endpoints: [UpstreamEndpoint],
        tls: UpstreamTLS? = nil,
        healthCheck: HealthCheck? = nil,
        http2: Bool = false
    ) {
        self.endpoints = endpoints
        self.tls = tls
        self.healthCheck = healthCheck
        self.http2 = http2
    }
}

/// How to speak TLS to upstream endpoints.
public struct UpstreamTLS: Sendable {
    /// PEM CA certificates to verify the upstream against; `nil` = no verification (the
    /// ingress-nginx default for `backend-protocol: HTTPS`).
    public var trustRootsPEM: String?
    /// SNI and the name verified; `nil` = the endpoint host when it is a name (IPs send no SNI).
    public var serverName: String?

    /// Creates an upstream TLS policy.
    public init(trustRootsPEM: String? = nil, serverName: String? = nil) {
        self.trustRootsPEM = trustRootsPEM
        self.serverName = serverName
    }
}

/// One upstream `host:port` (HTTP/1.1, plain).
public struct UpstreamEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// IP address or host name.
    public var host: String
    /// TCP port.
    public var port: Int

    /// Creates an endpoint.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`.
    public var description: String { "\(self.host):\(self.port)" }
}

/// Connection-wide timeouts and limits.
public struct HTTPLimits: Sendable {
    /// Time allowed to receive a complete request head once it started (or after accept); exceeded -> 408.
    public var headerReadTimeout: TimeAmount
    /// How long an idle keep-alive connection is kept.
    public var idleTimeout: TimeAmount
    /// Longest request line; longer -> 414.
    public var maxRequestLineSize: Int
    /// Longest single header line; also the decoder's per-field limit.
    public var maxHeaderFieldSize: Int
    /// Largest header section; larger -> 431.
    public var maxHeaderSectionSize: Int
    /// Idle upstream connections kept per endpoint and event loop. Up to four times as many
    /// are kept for about a second after a burst, then closed oldest first.
    public var maxIdleUpstreamConnectionsPerEndpoint: Int
    /// How long an idle upstream connection is kept.
    public var upstreamIdleTimeout: TimeAmount
    /// Connect attempts for an idempotent request (first try included).
    public var maxConnectAttempts: Int
    /// Concurrent streams per HTTP/2 connection (advertised and enforced).
    public var maxConcurrentStreams: Int
    /// How long an endpoint whose connect failed is tried last; doubled per further
    /// consecutive failure, up to 30 times this.
    public var ejectionTime: TimeAmount

    /// Creates limits; defaults follow nginx's.
    public init(
        headerReadTimeout: TimeAmount = .seconds(60),
        idleTimeout: TimeAmount = .seconds(75),
        maxRequestLineSize: Int = 8 * 1024,
        maxHeaderFieldSize: Int = 8 * 1024,
        maxHeaderSectionSize: Int = 32 * 1024,
        maxIdleUpstreamConnectionsPerEndpoint: Int = 64,
        upstreamIdleTimeout: TimeAmount = .seconds(60),
        maxConnectAttempts: Int = 3,
        maxConcurrentStreams: Int = 100,
        ejectionTime: TimeAmount = .seconds(1)
    ) {
        self.headerReadTimeout = headerReadTimeout
        self.idleTimeout = idleTimeout
        self.maxRequestLineSize = maxRequestLineSize
        self.maxHeaderFieldSize = maxHeaderFieldSize
        self.maxHeaderSectionSize = maxHeaderSectionSize
        self.maxIdleUpstreamConnectionsPerEndpoint = maxIdleUpstreamConnectionsPerEndpoint
        self.upstreamIdleTimeout = upstreamIdleTimeout
        self.maxConnectAttempts = maxConnectAttempts
        self.maxConcurrentStreams = maxConcurrentStreams
        self.ejectionTime = ejectionTime
    }
}
