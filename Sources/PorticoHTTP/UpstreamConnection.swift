import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// Idle connections are keyed by endpoint and TLS context: plain and TLS connections to
/// one endpoint never mix, and a reload with new TLS settings starts new connections.
struct UpstreamKey: Hashable {
    let endpoint: UpstreamEndpoint
    let tls: ObjectIdentifier?
}

/// The last handler of an upstream channel: hands response parts straight to the
/// ``ProxyHandler`` that leased the connection (same event loop, a plain method call) and
/// withholds `read` while that downstream cannot take more bytes.
///
/// HTTP/1.1 connections: the only handler after TLS; it encodes requests and decodes responses
/// itself (``HTTP1Encoder``, ``HTTP1ResponseDecoder``). HTTP/2 streams (gRPC): an
/// ``UpstreamStreamBridge`` in front hands it the stream codec's response parts, and it writes
/// request parts.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Response heads from upstreams may be larger than what clients may send (cookies, CSP).
    static let responseLimits = HTTP1HeadLimits(
        maxRequestLineSize: 8192,
        maxFieldSize: 65536,
        maxHeadSize: 131072
    )

    let key: UpstreamKey
    /// One HTTP/2 stream (gRPC upstreams) rather than an HTTP/1.1 connection: never reused.
    let isStream: Bool
    /// Strong on purpose: a connection can close after its pool was dropped (engine
    /// shutdown, a test's engine going away); the pool lets go of a connection when it
    /// closes, which breaks the cycle. (It was `unowned(unsafe)`: a use after free.)
    let pool: UpstreamConnectionPool
    /// The downstream exchange using this connection; `nil` while idle in the pool.
    var owner: ProxyHandler?
    private(set) var context: ChannelHandlerContext?
    private var readPending = false
    private var needsFlush = false
    private var decoder = HTTP1ResponseDecoder(limits: UpstreamConnection.responseLimits)
    private var encoder = HTTP1Encoder()
    /// Received bytes not decoded yet; `nil` when empty.
    private var inbound: ByteBuffer?
    private(set) var isActive = true
    /// Why the connection failed, when it did (shown in the 502 body).
    private(set) var failure: (any Error)?
    var idleSince = NIODeadline.uptimeNanoseconds(0)

    init(key: UpstreamKey, pool: UpstreamConnectionPool, isStream: Bool = false) {
        self.key = key
        self.pool = pool
        self.isStream = isStream
    }

    var channel: (any Channel)? { self.context?.channel }
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func write(_ part: HTTPClientRequestPart) {
        guard let context = self.context else { return }
        self.needsFlush = true
        if self.isStream {
            context.write(NIOAny(part), promise: nil)
            return
        }
        switch part {
        case .head(let head):
            self.writeHead(head, rawFields: nil)
        case .body(.byteBuffer(let body)):
            if let prefix = self.encoder.chunkPrefix(for: body.readableBytes, allocator: context.channel.allocator) {
                context.write(self.wrapOutboundOut(prefix), promise: nil)
            }
            context.write(self.wrapOutboundOut(body), promise: nil)
        case .body(.fileRegion):
            preconditionFailure("the proxy never writes file regions")
        case .end(let trailers):
            if let end = self.encoder.end(trailers: trailers, allocator: context.channel.allocator) {
                context.write(self.wrapOutboundOut(end), promise: nil)
            }
        }
    }

    /// Writes a request head; its fields as bytes when `rawFields` holds them (HTTP/1.1
    /// connections only; `head.headers` is then empty).
    func writeHead(_ head: HTTPRequestHead, rawFields: RawRequestFields?) {
        guard let context = self.context else { return }
        self.needsFlush = true
        if self.isStream {
            assert(rawFields == nil, "an HTTP/2 upstream takes fields as a block")
            context.write(NIOAny(HTTPClientRequestPart.head(head)), promise: nil)
            return
        }
        self.decoder.answeringHEAD = head.method == .HEAD
        self.decoder.passFieldsRaw = self.passResponseFieldsRaw
        let capacity = rawFields.map { $0.bytes.readableBytes + head.uri.utf8.count + 64 } ?? 512
        var buffer = context.channel.allocator.buffer(capacity: capacity)
        if let rawFields {
            self.encoder.writeRequestHead(
                head,
                rawFields: rawFields.bytes,
                hasLength: rawFields.hasLength,
                into: &buffer
            )
        } else {
            self.encoder.writeRequestHead(head, into: &buffer)
        }
        context.write(self.wrapOutboundOut(buffer), promise: nil)
    }

    /// After a 101: `tunnel` takes this handler's place, with the bytes that followed the 101.
    func becomeTunnel(_ tunnel: TunnelHandler) throws {
        guard let context = self.context else { throw ChannelError.ioOnClosedChannel }
        let operations = context.pipeline.syncOperations
        try operations.addHandler(tunnel, position: .after(self))
        if let leftover = self.inbound {
            self.inbound = nil
            context.fireChannelRead(self.wrapInboundOut(leftover))
            context.fireChannelReadComplete()
        }
        operations.removeHandler(context: context, promise: nil)
    }

    func flush() {
        if self.needsFlush, let context = self.context {
            self.needsFlush = false
            context.flush()
        }
    }

    func close() {
        self.isActive = false
        self.context?.close(promise: nil)
    }

    /// For the response head last handed over: its hop-by-hop fields were already left out and
    /// this is what its `Connection` fields said (`nil`: they are still in the head, as for a
    /// 101 or an HTTP/2 stream's head).
    var removedHopByHop: ConnectionOptions? { self.decoder.removedHopByHop }

    /// Whether the response to the next request may keep its fields as bytes (for an
    /// HTTP/1.1 client; see ``HTTP1ResponseDecoder/passFieldsRaw``).
    var passResponseFieldsRaw = false

    /// For the response head last handed over: its fields, when kept as bytes.
    var rawResponseFields: RawResponseFields? { self.decoder.rawFields }

    /// Lets a withheld read through once the downstream drained.
    func resumeReading() {
        if self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        guard self.owner != nil, self.isActive else {
            // Bytes on an idle connection: the upstream is confused; never reuse it.
            return self.close()
        }
        if var held = self.inbound {
            self.inbound = nil  // unique, so appending does not copy
            held.writeBuffer(&bytes)
            self.inbound = held
        } else {
            self.inbound = bytes
        }
        while !self.decoder.isStopped {
            guard let owner = self.owner else {
                // The exchange ended (or was abandoned); bytes that remain make it unusable.
                if self.inbound != nil { self.close() }
                return
            }
            // An empty buffer still lets the decoder report the end of a message it has read.
            var buffer = self.inbound ?? ByteBuffer()
            self.inbound = nil
            let part: HTTPClientResponsePart?
            do {
                part = try self.decoder.next(&buffer)
            } catch {
                self.failure = error
                return self.close()
            }
            if buffer.readableBytes > 0 { self.inbound = buffer }
            guard let part else { return }
            owner.upstreamReceived(part)
        }
    }

    /// A response part of an HTTP/2 stream (from the ``UpstreamStreamBridge``).
    func receiveStreamPart(_ part: HTTPClientResponsePart) {
        if let owner = self.owner {
            owner.upstreamReceived(part)
        } else {
            self.close()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.owner?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.owner?.upstreamBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isActive = false
        self.pool.remove(self)
        if let owner = self.owner, let end = self.decoder.connectionClosed() {
            // A body delimited by the close ended normally.
            owner.upstreamReceived(end)
        }
        if let owner = self.owner {
            self.owner = nil
            owner.upstreamClosed(failure: self.failure)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.failure == nil { self.failure = error }
        self.close()
    }

    func read(context: ChannelHandlerContext) {
        if let owner = self.owner, !owner.downstreamIsWritable {
            self.readPending = true
        } else {
            context.read()
        }
    }
}

/// Idle keep-alive upstream connections of one event loop, per endpoint, and the round-robin
/// cursors. Only touched on its event loop: no locks on the request path.
final class UpstreamConnectionPool {
    let eventLoop: any EventLoop
    /// This loop's metric counters (kept here because this object is already loop-local).
    let metrics: LoopMetrics
    /// Lists by reference: changing an array stored in the dictionary in place goes through
    /// the dictionary's modify accessor, whose frame was allocated at each take (two
    /// allocations per request).
    private final class IdleList {
        var connections: [UpstreamConnection] = []
    }
    private var idle: [UpstreamKey: IdleList] = [:]
    /// HTTP/2 connections (gRPC pools), one per endpoint and TLS context; requests are streams.
    private var http2: [UpstreamKey: EventLoopFuture<HTTP2Upstream>] = [:]
    private var cursors: [String: Int] = [:]
    /// Ejections and requests in progress, by endpoint, on this loop.
    var health = EndpointHealth()
    private var sweeper: RepeatedTask?
    private var idleTimeout = TimeAmount.seconds(60)
    /// ``HTTPLimits/maxIdleUpstreamConnectionsPerEndpoint`` as last applied.
    private var maxIdle = 64
    /// How long connections above the idle limit are kept, and by how much they may exceed it.
    static let burstGrace = TimeAmount.seconds(1)
    static let burstFactor = 4

    init(eventLoop: any EventLoop, metricsFactory: any MetricsFactory) {
        self.eventLoop = eventLoop
        self.metrics = LoopMetrics(factory: metricsFactory)
    }

    /// The next round-robin start index for `pool`.
    func nextIndex(pool: String, count: Int) -> Int {
        Self.postIncrement(&self.cursors[pool, default: 0]) % count  // one hash lookup
    }

    private static func postIncrement(_ value: inout Int) -> Int {
        defer { value &+= 1 }
        return value
    }

    /// The most recently used idle connection for `key`, if any.
    func takeIdle(_ key: UpstreamKey) -> UpstreamConnection? {
        guard let list = self.idle[key] else { return nil }
        while let connection = list.connections.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Returns a connection whose exchange finished cleanly.
    func release(_ connection: UpstreamConnection, limits: HTTPLimits) {
        connection.owner = nil
        guard connection.isActive else { return }
        // A read withheld for the previous owner's slow client must not stall the next owner
        // (and an idle connection must read to notice the upstream closing it).
        connection.resumeReading()
        // Over the limit, a connection is still kept for a moment (the sweeper trims the list
        // back to the limit after ``burstGrace``): when a burst of exchanges ends at once, the
        // next burst reuses them instead of opening new ones (which cost more than the rest of
        // a proxied request: with 100 HTTP/2 streams and 64 kept, 14% of Portico's CPU went
        // into connecting). A hard cap bounds the overflow.
        let limit = limits.maxIdleUpstreamConnectionsPerEndpoint
        connection.idleSince = .now()
        let cap = limit * Self.burstFactor
        // (With no room at all, no empty list is stored for the key: nothing would sweep it.)
        guard cap > 0 else { return connection.close() }
        let list: IdleList
        if let known = self.idle[connection.key] {
            list = known
        } else {
            list = IdleList()
            self.idle[connection.key] = list
        }
        guard list.connections.count < cap else { return connection.close() }
        list.connections.append(connection)
        self.maxIdle = limit
        if self.sweeper == nil {
            self.idleTimeout = limits.upstreamIdleTimeout
            let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.sweeper = self.eventLoop.scheduleRepeatedTask(
                initialDelay: .seconds(1),
                delay: .seconds(1)
            ) { _ in
                loopBound.value.sweep()
            }
        }
    }

    func remove(_ connection: UpstreamConnection) {
        guard let list = self.idle[connection.key] else { return }
        if let index = list.connections.firstIndex(where: { $0 === connection }) {
            list.connections.remove(at: index)
        }
    }

    /// Closes connections idle longer than the idle timeout, and the least recently used ones
    /// above the limit once they have been idle for ``burstGrace``.
    private func sweep() {
        let now = NIODeadline.now()
        let cutoff = now - self.idleTimeout
        let burstCutoff = now - Self.burstGrace
        for (key, list) in self.idle {
            // Oldest first: connections are appended when released and taken from the end.
            while let oldest = list.connections.first,
                oldest.idleSince < cutoff || (list.connections.count > self.maxIdle && oldest.idleSince < burstCutoff)
            {
                list.connections.removeFirst()
                oldest.close()
            }
            if list.connections.isEmpty { self.idle[key] = nil }
        }
    }

    /// Closes every idle connection (engine shutdown).
    func closeAll() {
        self.sweeper?.cancel()
        self.sweeper = nil
        for (_, list) in self.idle {
            for connection in list.connections { connection.close() }
        }
        self.idle = [:]
        for (_, upstream) in self.http2 {
            upstream.whenSuccess { $0.channel.close(promise: nil) }
        }
        self.http2 = [:]
    }

    /// A new stream on this loop's HTTP/2 connection to the endpoint (connecting it first if
    /// needed; concurrent requests share one connect). The stream speaks HTTP/1 parts, so a
    /// ``ProxyHandler`` drives it like any upstream connection.
    func openStream(
        _ key: UpstreamKey,
        tls: UpstreamTLSContext?,
        timeout: TimeAmount
    ) -> EventLoopFuture<UpstreamConnection> {
        let connection: EventLoopFuture<HTTP2Upstream>
        if let existing = self.http2[key] {
            connection = existing
        } else {
            connection = self.connectHTTP2(key, tls: tls, timeout: timeout)
            self.http2[key] = connection
            let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
            connection.whenComplete { result in
                switch result {
                case .success(let upstream):
                    upstream.channel.closeFuture.whenComplete { _ in
                        let pool = loopBound.value
                        if pool.http2[key] === connection { pool.http2[key] = nil }
                    }
                case .failure:
                    let pool = loopBound.value
                    if pool.http2[key] === connection { pool.http2[key] = nil }
                }
            }
        }
        let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
        let secure = tls != nil
        return connection.flatMap { upstream in
            upstream.multiplexer.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    let operations = stream.pipeline.syncOperations
                    try operations.addHandler(
                        HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: secure ? .https : .http)
                    )
                    let connection = UpstreamConnection(key: key, pool: loopBound.value, isStream: true)
                    try operations.addHandler(UpstreamStreamBridge(connection))
                    try operations.addHandler(connection)
                }
            }
        }.flatMapThrowing { stream in
            try stream.pipeline.syncOperations.handler(type: UpstreamConnection.self)
        }
    }

    private func connectHTTP2(
        _ key: UpstreamKey,
        tls: UpstreamTLSContext?,
        timeout: TimeAmount
    ) -> EventLoopFuture<HTTP2Upstream> {
        self.openChannel(to: key.endpoint, tls: tls, timeout: timeout) { operations in
            let multiplexer = try operations.configureHTTP2Pipeline(
                mode: .client,
                connectionConfiguration: NIOHTTP2Handler.ConnectionConfiguration(),
                streamConfiguration: NIOHTTP2Handler.StreamConfiguration()
            ) { stream in
                // Upstreams do not open streams to us (no server push).
                stream.close()
            }
            try operations.addHandler(HTTP2Upstream.Holder(multiplexer: multiplexer))
        }.flatMapThrowing { channel in
            let holder = try channel.pipeline.syncOperations.handler(type: HTTP2Upstream.Holder.self)
            return HTTP2Upstream(channel: channel, multiplexer: holder.multiplexer)
        }
    }

    /// Opens a new HTTP/1.1 connection (over TLS when `tls` is set) on this event loop.
    func connect(
        _ key: UpstreamKey,
        tls: UpstreamTLSContext?,
        timeout: TimeAmount
    ) -> EventLoopFuture<UpstreamConnection> {
        let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
        return self.openChannel(to: key.endpoint, tls: tls, timeout: timeout) { operations in
            try operations.addHandler(UpstreamConnection(key: key, pool: loopBound.value))
        }.flatMapThrowing { channel in
            try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
        }
    }

    /// A TCP connection to `endpoint` on this loop (TCP_NODELAY, connect timeout), with TLS first
    /// when `tls` is set (SNI: the configured name, else the host when it is a name), then the
    /// handlers `configure` adds. An IP literal connects directly; only names go through the
    /// resolver (which hops to another thread for getaddrinfo on every new connection).
    private func openChannel(
        to endpoint: UpstreamEndpoint,
        tls: UpstreamTLSContext?,
        timeout: TimeAmount,
        configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let serverName = tls?.serverName ?? (IPAddressRange.parse(endpoint.host) == nil ? endpoint.host : nil)
        let bootstrap = ClientBootstrap(group: self.eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let tls {
                        try operations.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: serverName))
                    }
                    try configure(operations)
                }
            }
        if let address = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: endpoint.host, port: endpoint.port)
    }
}

/// An HTTP/2 connection to an upstream and the multiplexer that opens its streams.
final class HTTP2Upstream {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer

    init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.channel = channel
        self.multiplexer = multiplexer
    }

    /// Keeps the multiplexer reachable from the channel until the connect completes.
    final class Holder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = Never
        let multiplexer: NIOHTTP2Handler.StreamMultiplexer

        init(multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
            self.multiplexer = multiplexer
        }
    }
}

/// One ``UpstreamConnectionPool`` per event loop of the engine's group.
final class UpstreamPoolRegistry: Sendable {
    private let pools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<UpstreamConnectionPool>]>([:])
    private let metricsFactory: any MetricsFactory

    init(metricsFactory: any MetricsFactory) {
        self.metricsFactory = metricsFactory
    }

    /// The pool of `eventLoop`; call on that loop.
    func pool(for eventLoop: any EventLoop) -> UpstreamConnectionPool {
        let key = ObjectIdentifier(eventLoop)
        return self.pools.withLockedValue { pools in
            if let existing = pools[key] { return existing.value }
            let pool = UpstreamConnectionPool(eventLoop: eventLoop, metricsFactory: self.metricsFactory)
            pools[key] = NIOLoopBound(pool, eventLoop: eventLoop)
            return pool
        }
    }

    /// Closes all idle upstream connections on every loop.
    func closeAll() async {
        let pools = self.pools.withLockedValue { $0 }
        for (_, pool) in pools {
            try? await pool.eventLoop.submit { pool.value.closeAll() }.get()
        }
    }
}

/// In front of an HTTP/2 stream's ``UpstreamConnection``: hands it the stream codec's response
/// parts with a method call (the connection itself reads bytes on HTTP/1.1 connections).
final class UpstreamStreamBridge: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let connection: UpstreamConnection

    init(_ connection: UpstreamConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.connection.receiveStreamPart(self.unwrapInboundIn(data))
    }
}
