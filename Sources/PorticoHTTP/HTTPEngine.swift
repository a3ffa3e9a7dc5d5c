// The HTTP/1.1 (+ HTTP/2 over TLS and h2c) reverse-proxy engine.
//
// Hot path (one keep-alive HTTP/1.1 request, both connections on one event loop):
//   downstream read -> [NIOSSLServerHandler] -> ProxyHandler, which decodes the bytes itself
//   (HTTP1RequestDecoder: one scan for the end of the head, fields validated and turned into
//   HTTPHeaders), makes one pass over the headers (RequestHeadFacts), one uncontended lock
//   read of the current EngineState, the route lookup (a class: one retain), X-Forwarded-*
//   appended in place, an idle upstream connection popped from the loop-local pool (no
//   lock), and the head encoded straight into a ByteBuffer on that connection
//   (UpstreamConnection, the only handler of the upstream channel). Response: decoded by
//   UpstreamConnection (HTTP1ResponseDecoder), handed to ProxyHandler by a method call,
//   encoded back into bytes. Pipelined requests wait undecoded, so `read` is never withheld
//   on the common path. Upstream writes are flushed once per downstream read burst, the
//   response once at its end. One NIOScheduledCallback per connection carries all
//   timeouts, moved lazily.
//
// Measured (wrk -t1 -c50, 1 KB responses from nginx, one event loop vs one nginx worker,
// proxy and upstream sharing one core, 2026-11-27): 4 syscalls per request (read, write,
// read, writev) like nginx; CPU per request 66-76 us (user ~33, kernel ~33-38) against
// nginx's ~32 (user ~9, kernel ~23). Before this codec (NIOHTTP1 decoders/encoders in the
// pipeline) it was 96 us. What remains in user space is spread over NIO's channel
// machinery (pipeline, pending writes, selector), retain/release and HTTPHeaders' strings;
// in the kernel, Portico is preempted by the upstream on the shared core ~0.7 times per
// request against nginx's ~0.2 (/proc/PID/task/TID/status, nonvoluntary_ctxt_switches).

public import Logging
public import Metrics
import NIOConcurrencyHelpers
public import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// The ingress data plane: HTTP/1.1 and TLS listeners proxying to upstream pools by route.
///
/// `apply` binds on first use and reloads afterwards; `shutdown` drains. Calls to `apply`
/// and `shutdown` must not overlap (the runtime's reconciler serialises them).
public final class HTTPEngine: Sendable {
    private let group: any EventLoopGroup
    private let core: EngineCore
    private let listeners = NIOLockedValueBox<[HTTPListener: BoundListener]>([:])
    /// The TLS listeners' context (made once) and whether its ALPN offers `h2`.
    private let sslContexts = NIOLockedValueBox<(context: NIOSSLContext, http2: Bool)?>(nil)
    #if os(Linux)
    /// Own the plain-HTTP listeners when the fast lane is on (HTTPFastLane.swift): one lane
    /// per event loop of the group, each with its own socket on the port (SO_REUSEPORT).
    private let fastLanes: [HTTPFastLane]
    #endif

    /// A bound listening socket: a NIO server channel, or one of the fast lane's.
    private enum BoundListener {
        case channel(any Channel)
        #if os(Linux)
        case fastLane([(HTTPFastLane, HTTPFastLane.Listener)])
        #endif

        var localAddress: SocketAddress? {
            switch self {
            case .channel(let channel): channel.localAddress
            #if os(Linux)
            case .fastLane(let listeners): listeners.first?.1.localAddress
            #endif
            }
        }
    }

    /// Creates an engine that is not listening yet.
    ///
    /// Metrics go to `metricsFactory` (default: the bootstrapped `MetricsSystem`):
    /// `portico_http_requests_total{ingress,service,status}`, `portico_http_upstream_errors_total{service,reason}`
    /// and the meter `portico_http_open_connections`.
    ///
    /// `fastLane`: plain-HTTP listeners are owned by the fast lane's own epoll loops (Linux;
    /// see HTTPFastLane.swift), one per event loop of `group`, which serve the common
    /// requests and hand the other connections to this engine.
    public init(
        group: any EventLoopGroup,
        logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil,
        fastLane: Bool = false
    ) {
        self.group = group
        let core = EngineCore(
            logger: logger,
            state: try! EngineState(HTTPEngineConfiguration()),
            metricsFactory: metricsFactory ?? MetricsSystem.factory,
            group: group
        )
        self.core = core
        #if os(Linux)
        var lanes: [HTTPFastLane] = []
        if fastLane {
            let count = max(1, Array(group.makeIterator()).count)
            do {
                for _ in 0..<count {
                    lanes.append(
                        try HTTPFastLane(core: core) { descriptor, listener, bytes, origin in
                            Self.adopt(
                                descriptor,
                                listener: listener,
                                bytes: bytes,
                                origin: origin,
                                core: core,
                                group: group
                            )
                        }
                    )
                }
            } catch {
                logger.error("fast lane not started, plain HTTP stays on NIO", metadata: ["error": "\(error)"])
                for lane in lanes { lane.shutdown() }
                lanes = []
            }
        }
        self.fastLanes = lanes
        #endif
    }

    #if os(Linux)
    /// Requests the fast lanes answered and connections they handed over, by lane (empty
    /// without the fast lane).
    var fastLaneStatistics: [HTTPFastLane.Statistics] { self.fastLanes.map(\.statistics) }

    /// Spare buffers the fast lanes hold (tests).
    func fastLaneSpareCount() async -> Int {
        var total = 0
        for lane in self.fastLanes { total += await lane.spareCount() }
        return total
    }

    /// Buffer storage the fast lanes' connections hold between requests (tests).
    func fastLaneIdleBufferCapacity() async -> Int {
        var total = 0
        for lane in self.fastLanes { total += await lane.idleClientBufferCapacity() }
        return total
    }

    deinit {
        // An engine dropped without `shutdown` (its first `apply` failed) stops its lanes' threads.
        for lane in self.fastLanes { lane.shutdown() }
    }
    #endif

    /// The addresses actually bound, by listener (port 0 resolves here).
    public var boundListeners: [HTTPListener: SocketAddress] {
        self.listeners.withLockedValue { listeners in
            var result: [HTTPListener: SocketAddress] = [:]
            for (listener, bound) in listeners {
                if let address = bound.localAddress { result[listener] = address }
            }
            return result
        }
    }

    /// Number of open downstream connections.
    public var openConnections: Int {
        #if os(Linux)
        let lane = self.fastLanes.reduce(0) { $0 + $1.openClients }
        #else
        let lane = 0
        #endif
        return self.core.connections.withLockedValue { $0.count } + lane
    }

    /// Applies a configuration: the first call binds the listeners; later calls are reloads.
    ///
    /// Certificates are parsed and new listeners bound before anything changes; on error
    /// the previous configuration keeps serving. Listeners whose address, port and kind did
    /// not change stay bound; new routes, pools, certificates and PROXY protocol peers apply to
    /// new requests, handshakes and connections; established connections finish undisturbed.
    public func apply(_ configuration: HTTPEngineConfiguration) async throws {
        let core = self.core
        let http2 = configuration.enableHTTP2
        let state = try EngineState(configuration, previous: core.state) { initial in
            Self.serverTLSConfiguration(initial: initial, http2: http2, core: core)
        }
        let wanted = Set(configuration.listeners)
        let existing = self.listeners.withLockedValue { $0 }

        var sslContext = self.sslContexts.withLockedValue { $0 }
        if sslContext == nil, wanted.contains(where: { $0.kind == .https }), let store = state.certificates {
            let context = try self.makeSSLContext(initial: store.fallback, http2: configuration.enableHTTP2)
            sslContext = (context, configuration.enableHTTP2)
            self.sslContexts.withLockedValue { $0 = sslContext }
        }

        // A listener whose kind changed on the same address and port must release the port first.
        let conflicting = existing.filter { listener, _ in
            !wanted.contains(listener) && listener.port != 0
                && wanted.contains { $0.address == listener.address && $0.port == listener.port }
        }
        for (listener, channel) in conflicting {
            await self.close(channel)
            _ = self.listeners.withLockedValue { $0.removeValue(forKey: listener) }
        }

        var bound: [HTTPListener: BoundListener] = [:]
        do {
            for listener in wanted where existing[listener] == nil {
                bound[listener] = try await self.bind(listener, sslContext: sslContext)
            }
        } catch {
            for (_, listener) in bound { await self.close(listener) }
            throw error
        }
        self.core.replaceState(state)
        self.updateHealthChecks(configuration, state: state)
        var removed: [BoundListener] = []
        self.listeners.withLockedValue { listeners in
            for (listener, bound) in listeners where !wanted.contains(listener) {
                removed.append(bound)
                listeners[listener] = nil
            }
            listeners.merge(bound) { old, _ in old }
        }
        for listener in removed {
            await self.close(listener)
        }
        self.core.logger.info(
            "http engine configuration applied",
            metadata: ["listeners": "\(wanted.count)", "new": "\(bound.count)", "closed": "\(removed.count)"]
        )
    }

    /// Stops accepting, asks open connections to finish their current exchange, and closes
    /// whatever is still open after `gracePeriod`.
    public func shutdown(gracePeriod: TimeAmount) async {
        let listeners = self.listeners.withLockedValue { listeners in
            defer { listeners = [:] }
            return listeners
        }
        for (_, listener) in listeners {
            await self.close(listener)
        }
        #if os(Linux)
        // Nothing is accepted any more. The lane's own connections finish their exchange (or close when idle), like the
        // engine's below; those it hands over meanwhile become channels first.
        for lane in self.fastLanes { lane.quiesce() }
        let adopting = NIODeadline.now() + .seconds(1)
        while NIODeadline.now() < adopting, self.core.handoversInFlight.withLockedValue({ $0 }) > 0 {
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
        #endif
        let open = self.core.connections.withLockedValue { $0 }
        for (_, channel) in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = NIODeadline.now() + gracePeriod
        while NIODeadline.now() < deadline, self.openConnections > 0 {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        #if os(Linux)
        // Whatever the lanes still hold is closed with them.
        for lane in self.fastLanes { lane.shutdown() }
        #endif
        let remaining = self.core.connections.withLockedValue { $0 }
        for (_, channel) in remaining {
            try? await channel.close()
        }
        self.core.healthChecker.stopAll()
        await self.core.upstreamPools.closeAll()
    }

    private func updateHealthChecks(_ configuration: HTTPEngineConfiguration, state: EngineState) {
        var targets: [HealthChecker.Target] = []
        for (id, pool) in configuration.pools {
            guard let check = pool.healthCheck else { continue }
            for endpoint in pool.endpoints {
                targets.append(
                    HealthChecker.Target(
                        endpoint: endpoint,
                        check: check,
                        service: id,
                        tlsPool: state.upstreamTLS[id] == nil ? nil : id
                    )
                )
            }
        }
        self.core.healthChecker.update(targets, tls: state.upstreamTLS)
    }

    // MARK: Listeners

    private func makeSSLContext(initial: CertificateStore.Entry, http2: Bool) throws -> NIOSSLContext {
        try NIOSSLContext(configuration: Self.serverTLSConfiguration(initial: initial, http2: http2, core: self.core))
    }

    /// TLS 1.2+, ALPN, and the certificate chosen by SNI from the current generation's store.
    static func serverTLSConfiguration(
        initial: CertificateStore.Entry,
        http2: Bool,
        core: EngineCore
    ) -> TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: initial.chain, privateKey: initial.key)
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        tls.sslContextCallback = { values, promise in
            guard let store = core.state.certificates else {
                promise.succeed(.noChanges)
                return
            }
            let entry = store.select(serverName: values.serverHostname)
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = entry.chain
            override.privateKey = entry.key
            promise.succeed(override)
        }
        return tls
    }

    private func close(_ listener: BoundListener) async {
        switch listener {
        case .channel(let channel): try? await channel.close()
        #if os(Linux)
        case .fastLane(let listeners):
            for (lane, listener) in listeners { await lane.stopListening(listener) }
        #endif
        }
    }

    private func bind(
        _ listener: HTTPListener,
        sslContext: (context: NIOSSLContext, http2: Bool)?
    ) async throws -> BoundListener {
        #if os(Linux)
        let tls =
            listener.kind == .https
            ? sslContext.map { HTTPFastLane.TLSServer(context: $0.context, http2: $0.http2) } : nil
        if let first = self.fastLanes.first, listener.kind == .http || tls != nil {
            // The first lane's socket fixes the port (port 0 picks one); the others join it.
            let reusePort = self.fastLanes.count > 1
            var bound = [(first, try first.listen(listener, reusePort: reusePort, tls: tls))]
            do {
                for lane in self.fastLanes.dropFirst() {
                    let port = bound[0].1.localAddress.port ?? listener.port
                    bound.append((lane, try lane.listen(listener, port: port, reusePort: true, tls: tls)))
                }
            } catch {
                for (lane, socket) in bound { await lane.stopListening(socket) }
                throw error
            }
            return .fastLane(bound)
        }
        #endif
        return .channel(try await self.bindChannel(listener, sslContext: sslContext?.context))
    }

    private func bindChannel(_ listener: HTTPListener, sslContext: NIOSSLContext?) async throws -> any Channel {
        let core = self.core
        let kind = listener.kind
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                Self.initializeDownstream(
                    channel,
                    core: core,
                    kind: kind,
                    // The current generation's ranges (a reload may change them); the ones this
                    // listener was bound with until that generation is in place.
                    proxyProtocolPeers: core.state.proxyProtocolPeers[listener] ?? listener.acceptProxyProtocolFrom,
                    sslContext: sslContext
                )
            }
        #if os(Linux)
        // IP_FREEBIND (15): bind a virtual IP before this node holds it. Not fatal when refused.
        let freeBind = ChannelOptions.Types.SocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: CInt(IPPROTO_IP)),
            name: NIOBSDSocket.Option(rawValue: 15)
        )
        if let channel = try? await bootstrap.serverChannelOption(freeBind, value: 1)
            .bind(host: listener.address, port: listener.port).get()
        {
            return channel
        }
        #endif
        return try await bootstrap.bind(host: listener.address, port: listener.port).get()
    }

    #if os(Linux)
    /// Makes a NIO channel of a connection the fast lane accepted (and maybe read from): the
    /// same pipeline as a connection accepted by the listener, the bytes read so far first; or
    /// of the engine's end of a socket pair that carries a lane TLS connection's bytes.
    private static func adopt(
        _ descriptor: CInt,
        listener: HTTPListener,
        bytes: ByteBuffer,
        origin: HTTPFastLane.Origin,
        core: EngineCore,
        group: any EventLoopGroup
    ) {
        core.handoversInFlight.withLockedValue { $0 += 1 }
        // The descriptor is NIO's from here: it closes it when the channel fails to set up
        // (only a failing fcntl(O_NONBLOCK) on a socket we made non-blocking would leak it).
        ClientBootstrap(group: group)
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelInitializer { channel in
                if bytes.readableBytes > 0 {
                    do {
                        try channel.pipeline.syncOperations.addHandler(HandedOverBytes(bytes))
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                switch origin {
                case .accepted(let tls):
                    return Self.initializeDownstream(
                        channel,
                        core: core,
                        kind: tls == nil ? .http : .https,
                        proxyProtocolPeers: core.state.proxyProtocolPeers[listener]
                            ?? listener.acceptProxyProtocolFrom,
                        sslContext: tls?.context
                    )
                case .decrypted(let client, let localPort, let overTLS):
                    return Self.initializeDecrypted(
                        channel,
                        core: core,
                        client: client,
                        localPort: localPort,
                        overTLS: overTLS
                    )
                }
            }
            .withConnectedSocket(descriptor)
            .whenComplete { result in
                core.handoversInFlight.withLockedValue { $0 -= 1 }
                if case .failure(let error) = result {
                    core.logger.warning(
                        "fast lane: a connection could not be handed over",
                        metadata: ["error": "\(error)"]
                    )
                }
            }
    }

    /// A lane TLS connection's decrypted bytes, or an HTTP/2 stream the lane relays, as an
    /// HTTP/1.1 connection from `client` to `localPort` (the socket pair's own addresses say
    /// nothing); `overTLS`: the client's connection is TLS.
    private static func initializeDecrypted(
        _ channel: any Channel,
        core: EngineCore,
        client: SocketAddress?,
        localPort: Int?,
        overTLS: Bool
    ) -> EventLoopFuture<Void> {
        Self.track(channel, core: core)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ProxyHandler(
                    core: core,
                    isTLS: overTLS,
                    carried: CarriedClientAddress(client, eventLoop: channel.eventLoop),
                    localPort: localPort
                )
            )
        }
    }
    #endif

    /// Counts `channel` among the open connections until it closes.
    private static func track(_ channel: any Channel, core: EngineCore) {
        let key = ObjectIdentifier(channel)
        core.connections.withLockedValue { $0[key] = channel }
        core.openConnections.increment()
        channel.closeFuture.whenComplete { _ in
            core.connections.withLockedValue { $0[key] = nil }
            core.openConnections.decrement()
        }
    }

    private static func initializeDownstream(
        _ channel: any Channel,
        core: EngineCore,
        kind: HTTPListener.Kind,
        proxyProtocolPeers: [IPAddressRange],
        sslContext: NIOSSLContext?
    ) -> EventLoopFuture<Void> {
        Self.track(channel, core: core)
        // A trusted peer's PROXY header is read (and removed) before anything else, TLS included.
        let carried: CarriedClientAddress?
        if !proxyProtocolPeers.isEmpty, let peer = IPAddressRange.bytes(of: channel.remoteAddress),
            proxyProtocolPeers.contains(where: { $0.contains(peer) })
        {
            let box = CarriedClientAddress(nil, eventLoop: channel.eventLoop)
            carried = box
            do {
                try channel.pipeline.syncOperations.addHandler(ProxyProtocolHandler(carried: box, logger: core.logger))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        } else {
            carried = nil
        }
        guard kind == .https, let sslContext else {
            // Plain HTTP/1.1, or HTTP/2 with prior knowledge (h2c, as gRPC clients without TLS
            // speak), told apart by the connection preface.
            return channel.eventLoop.makeCompletedFuture {
                try Self.configureHTTP1(channel, core: core, isTLS: false, carried: carried) { channel in
                    try Self.configureHTTP2(channel, core: core, carried: carried, tlsFacts: nil, isTLS: false)
                }
            }
        }
        let clientAuth = core.state.clientAuth
        let tlsFacts: ConnectionTLSFactsBox?
        do {
            if clientAuth.isEmpty {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                tlsFacts = nil
            } else {
                // Some names ask for client certificates: choose the context by SNI first.
                let facts = ConnectionTLSFactsBox(ConnectionTLSFacts(), eventLoop: channel.eventLoop)
                try Self.addSNIRoutedTLS(
                    channel,
                    general: sslContext,
                    contexts: clientAuth,
                    facts: facts,
                    logger: core.logger
                )
                tlsFacts = facts
            }
            try channel.pipeline.syncOperations.addHandler(HandshakeCounter(core.handshakes))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        // ALPN picks the protocol: h2 -> HTTP/2 with one ProxyHandler per stream, else HTTP/1.1.
        return channel.configureHTTP2SecureUpgrade(
            h2ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureHTTP2(channel, core: core, carried: carried, tlsFacts: tlsFacts)
                }
            },
            http1ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureHTTP1(channel, core: core, isTLS: true, carried: carried, tlsFacts: tlsFacts)
                }
            }
        )
    }

    private static func configureHTTP2(
        _ channel: any Channel,
        core: EngineCore,
        carried: CarriedClientAddress?,
        tlsFacts: ConnectionTLSFactsBox?,
        isTLS: Bool = true
    ) throws {
        let limits = core.state.limits
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: limits.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderSectionSize),
            HTTP2Setting(parameter: .initialWindowSize, value: 65535),
        ]
        // Request blocks and their DATA lengths are checked by HTTP2ServerConnection in the
        // pass that reads them (HTTP2RequestBlock.swift); NIOHTTP2's checks cover both
        // directions and cost ~8% of an HTTP/2 request's CPU.
        connection.headerBlockValidation = .disabled
        connection.contentLengthValidation = .disabled
        // Responses of many streams finish in one event-loop tick (each from its own upstream
        // read): one flush of the connection for all of them, not one TLS record and one
        // write(2) each.
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(FlushCoalescingHandler())
        // Streams at the frame level (HTTP2ServerConnection.swift), no child channel each.
        let streams = HTTP2ServerConnection(core: core, isTLS: isTLS, carried: carried, tlsFacts: tlsFacts)
        try operations.addHandler(
            NIOHTTP2Handler(
                mode: .server,
                frameDelegate: streams,
                connectionConfiguration: connection,
                streamConfiguration: NIOHTTP2Handler.StreamConfiguration()
            )
        )
        try operations.addHandler(streams)
    }

    private static func configureHTTP1(
        _ channel: any Channel,
        core: EngineCore,
        isTLS: Bool,
        carried: CarriedClientAddress?,
        tlsFacts: ConnectionTLSFactsBox? = nil,
        switchToHTTP2: ((any Channel) throws -> Void)? = nil
    ) throws {
        // The proxy handler decodes and encodes HTTP/1.1 itself (HTTP1Codec.swift).
        try channel.pipeline.syncOperations.addHandler(
            ProxyHandler(
                core: core,
                isTLS: isTLS,
                carried: carried,
                tlsFacts: tlsFacts,
                switchToHTTP2: switchToHTTP2
            )
        )
    }
}

/// Counts the connection's TLS handshake (`portico_http_tls_handshakes_total`) as it ends,
/// then leaves the pipeline.
private final class HandshakeCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let counters: HandshakeCounters

    init(_ counters: HandshakeCounters) {
        self.counters = counters
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // (Counted before the connection goes on; passed on before leaving, as a removed
        // context forwards nothing.)
        let completed: Bool
        if case .handshakeCompleted? = event as? TLSUserEvent { completed = true } else { completed = false }
        if completed { self.counters.count(succeeded: true) }
        context.fireUserInboundEventTriggered(event)
        if completed { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
        if error is NIOSSLError || error is BoringSSLError {
            self.counters.count(succeeded: false)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// Delivers the bytes the fast lane read from a connection before handing it over, ahead of
/// anything NIO reads, then leaves the pipeline.
private final class HandedOverBytes: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var bytes: ByteBuffer?

    init(_ bytes: ByteBuffer) {
        self.bytes = bytes
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if let bytes = self.bytes {
            self.bytes = nil
            context.fireChannelRead(self.wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
