import Logging
import Metrics
import NIOCore
import NIOPosix

/// The client side of one forwarded TCP connection, and the owner of the connection.
///
/// Lifecycle: (trusted peer) read the PROXY header -> connect an endpoint on this channel's
/// event loop (round robin, next endpoint on failure or timeout) -> write the outgoing PROXY
/// header and any bytes read so far -> splice with ``TCPEndpointHandler``. Reads are
/// withheld while connecting and while the endpoint is not writable (and the endpoint
/// handler does the same in the other direction), so a slow reader stops the fast writer at
/// the socket buffers. EOFs become write shutdowns on the other side (``HalfCloseState``).
/// One idle timer per connection (``NIOScheduledCallback``); no per-read allocation beyond
/// NIO's read buffers, no futures once connected.
final class TCPClientHandler: ChannelDuplexHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// A trusted peer: its PROXY header is being read.
        case readingProxyHeader(ByteBuffer?)
        /// Connecting to an endpoint; bytes read meanwhile wait in `pendingToEndpoint`.
        case connecting
        /// A peer outside the trusted sources of a listener that accepts PROXY headers: the
        /// first bytes must not be one.
        case checkingFirstBytes(ByteBuffer?)
        case splicing
        case closed
    }

    private let settings: TCPListenerSettings
    private let startIndex: Int?
    private let core: L4Core
    private let decoder = ProxyHeaderDecoder()

    private var phase: Phase
    private var context: ChannelHandlerContext?
    private var endpoint: TCPEndpointHandler?
    private var pendingToEndpoint: ByteBuffer?
    private var attempt = 0
    private var closeState = HalfCloseState()
    private var outputShutdown: EventLoopFuture<Void>?
    private var readPending = false
    private var bytesRead = 0
    private var isRegistered = false
    /// The listener accepts PROXY headers from some sources, and this peer is not one.
    private var mustNotSendProxyHeader = false

    /// Addresses for the outgoing PROXY header: the peer and local address, or the ones a
    /// trusted proxy carried in.
    private var clientAddress: SocketAddress?
    private var serviceAddress: SocketAddress?

    // Idle timer: activity flags checked every idleTimeout/2; two quiet periods close.
    private var sawActivity = false
    private var quietPeriods = 0
    private var timer: NIOScheduledCallback?

    init(settings: TCPListenerSettings, startIndex: Int?, core: L4Core) {
        self.settings = settings
        self.startIndex = startIndex
        self.core = core
        self.phase = .connecting
    }

    private var forward: TCPForward { self.settings.forward }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive {
            self.start(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !self.isRegistered else { return }
        self.isRegistered = true
        let channel = context.channel
        self.core.connections.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        self.settings.metrics.connectionsAccepted.increment(by: 1)
        self.settings.metrics.connectionsActive.increment(by: 1)
        self.clientAddress = channel.remoteAddress
        self.serviceAddress = channel.localAddress
        self.armTimer()

        guard self.startIndex != nil else {
            self.core.logger.debug(
                "tcp connection closed: no endpoints",
                metadata: [
                    "service": "\(self.forward.service)", "client": "\(self.clientAddress.map { "\($0)" } ?? "?")",
                ]
            )
            self.closeNow()
            return
        }
        if self.settings.isTrusted(self.clientAddress) {
            self.phase = .readingProxyHeader(nil)
        } else {
            self.mustNotSendProxyHeader = !self.settings.trustedSources.isEmpty
            self.phase = .connecting
            self.connectNextEndpoint()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.phase = .closed
        self.cancelTimer()
        self.reportBytes()
        if self.isRegistered {
            self.isRegistered = false
            let channel = context.channel
            self.core.connections.withLockedValue { $0[ObjectIdentifier(channel)] = nil }
            self.settings.metrics.connectionsActive.decrement(by: 1)
        }
        let endpoint = self.endpoint
        self.endpoint = nil
        endpoint?.partnerDidClose(graceful: false)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.cancelTimer()
    }

    // MARK: Reads from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        self.sawActivity = true
        switch self.phase {
        case .splicing:
            self.bytesRead &+= buffer.readableBytes
            self.endpoint?.partnerWrite(buffer)
        case .readingProxyHeader(let accumulated):
            self.readProxyHeader(accumulated.map { Self.appending(buffer, to: $0) } ?? buffer)
        case .connecting:
            self.pendingToEndpoint = self.pendingToEndpoint.map { Self.appending(buffer, to: $0) } ?? buffer
        case .checkingFirstBytes(let accumulated):
            if let accumulated {
                buffer = Self.appending(buffer, to: accumulated)
            }
            self.checkFirstBytes(buffer)
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .splicing = self.phase {
            self.endpoint?.partnerFlush()
        }
        self.reportBytes()
        context.fireChannelReadComplete()
    }

    private func reportBytes() {
        if self.bytesRead > 0 {
            self.settings.metrics.bytesFromClients.increment(by: Int64(self.bytesRead))
            self.bytesRead = 0
        }
    }

    private static func appending(_ buffer: ByteBuffer, to accumulated: ByteBuffer) -> ByteBuffer {
        var accumulated = accumulated
        var buffer = buffer
        accumulated.writeBuffer(&buffer)
        return accumulated
    }

    private func readProxyHeader(_ accumulated: ByteBuffer) {
        var buffer = accumulated
        do {
            guard let header = try self.decoder.decode(&buffer) else {
                self.phase = .readingProxyHeader(buffer)
                return
            }
            if header.command == .proxy, let source = header.source, let destination = header.destination {
                self.clientAddress = source
                self.serviceAddress = destination
            }
            self.pendingToEndpoint = buffer.readableBytes > 0 ? buffer : nil
            self.phase = .connecting
            self.connectNextEndpoint()
        } catch {
            self.rejectProxyHeader("malformed PROXY header from a trusted source: \(error)")
        }
    }

    private func checkFirstBytes(_ buffer: ByteBuffer) {
        switch ProxyHeaderDecoder.detect(buffer) {
        case .undecided:
            self.phase = .checkingFirstBytes(buffer)
        case .proxyHeader:
            self.rejectProxyHeader("PROXY header from a source outside acceptProxyProtocolFrom")
        case .notProxyHeader:
            self.phase = .splicing
            self.bytesRead &+= buffer.readableBytes
            self.endpoint?.partnerWrite(buffer)
        }
    }

    private func rejectProxyHeader(_ reason: String) {
        self.settings.metrics.proxyHeadersRejected.increment(by: 1)
        self.core.logger.warning(
            "tcp connection closed: \(reason)",
            metadata: ["service": "\(self.forward.service)", "client": "\(self.clientAddress.map { "\($0)" } ?? "?")"]
        )
        self.closeNow()
    }

    // MARK: Connecting

    private func connectNextEndpoint() {
        guard let context = self.context, let start = self.startIndex else { return }
        guard
            let index = EndpointRotation.index(
                start: start,
                attempt: self.attempt,
                count: self.settings.endpoints.count
            )
        else {
            self.core.logger.warning(
                "tcp connection closed: no endpoint accepted it",
                metadata: ["service": "\(self.forward.service)", "attempts": "\(self.attempt)"]
            )
            self.closeNow()
            return
        }
        self.attempt += 1
        let target = self.settings.endpoints[index]
        let handler = TCPEndpointHandler(client: self, metrics: self.settings.metrics)
        let boundHandler = NIOLoopBound(handler, eventLoop: context.eventLoop)
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(self.forward.connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(boundHandler.value)
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch target {
        case .address(let address): connected = bootstrap.connect(to: address)
        case .name(let host, let port): connected = bootstrap.connect(host: host, port: port)
        }
        connected.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                self.endpointConnected(handler, channel: channel)
            case .failure(let error):
                self.settings.metrics.connectFailures.increment(by: 1)
                self.core.logger.info(
                    "tcp endpoint connect failed",
                    metadata: [
                        "service": "\(self.forward.service)", "endpoint": "\(target)", "error": "\(error)",
                    ]
                )
                if case .connecting = self.phase {
                    self.connectNextEndpoint()
                }
            }
        }
    }

    private func endpointConnected(_ handler: TCPEndpointHandler, channel: any Channel) {
        guard case .connecting = self.phase, let context = self.context else {
            channel.close(promise: nil)
            return
        }
        self.endpoint = handler
        if let version = self.forward.sendProxyProtocol {
            let header: ProxyHeader
            if let source = self.clientAddress, let destination = self.serviceAddress {
                header = ProxyHeader(source: source, destination: destination)
            } else {
                header = ProxyHeader(command: .proxy)
            }
            var buffer = context.channel.allocator.buffer(capacity: 108)
            header.write(version: version, to: &buffer)
            handler.partnerWrite(buffer)
        }
        let pending = self.pendingToEndpoint
        self.pendingToEndpoint = nil
        if self.mustNotSendProxyHeader {
            self.phase = .checkingFirstBytes(nil)
            if let pending {
                self.checkFirstBytes(pending)
            }
        } else {
            self.phase = .splicing
            if let pending {
                self.bytesRead &+= pending.readableBytes
                handler.partnerWrite(pending)
            }
        }
        handler.partnerFlush()
        if self.closeState.inputClosed {
            self.passOnUndecidedBytes()
            self.forwardEndOfInput()
        }
        if self.readPending {
            self.readPending = false
            context.read()
        }
    }

    // MARK: Backpressure

    func read(context: ChannelHandlerContext) {
        switch self.phase {
        case .readingProxyHeader:
            context.read()
        case .splicing, .checkingFirstBytes:
            if let endpoint = self.endpoint, endpoint.isWritable {
                context.read()
            } else {
                self.readPending = true
            }
        case .connecting, .closed:
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.endpoint?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    // MARK: Half-close and close

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.clientInputClosed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func clientInputClosed() {
        switch self.phase {
        case .readingProxyHeader:
            self.rejectProxyHeader("connection ended inside the PROXY header")
            return
        case .checkingFirstBytes:
            self.passOnUndecidedBytes()
        case .connecting, .splicing, .closed:
            break
        }
        self.perform(self.closeState.inputDidClose())
        if case .splicing = self.phase {
            self.forwardEndOfInput()
        }
    }

    /// Fewer bytes than a signature, then EOF: not a header; pass them on.
    private func passOnUndecidedBytes() {
        guard case .checkingFirstBytes(let accumulated) = self.phase else { return }
        self.phase = .splicing
        if let accumulated {
            self.bytesRead &+= accumulated.readableBytes
            self.endpoint?.partnerWrite(accumulated)
            self.endpoint?.partnerFlush()
        }
    }

    private func forwardEndOfInput() {
        self.endpoint?.partnerInputDidClose()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.core.logger.debug(
            "tcp client connection error",
            metadata: ["service": "\(self.forward.service)", "error": "\(error)"]
        )
        self.closeNow()
    }

    /// Closes both sides at once (errors, idle timeout, rejected headers, engine shutdown).
    func closeNow() {
        self.phase = .closed
        self.perform(self.closeState.closeNow())
        let endpoint = self.endpoint
        self.endpoint = nil
        endpoint?.partnerDidClose(graceful: false)
    }

    // Partner calls.

    func partnerWrite(_ buffer: ByteBuffer) {
        self.context?.write(self.wrapOutboundOut(buffer), promise: nil)
    }

    func partnerFlush() {
        self.context?.flush()
    }

    func partnerBecameWritable() {
        if self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    func partnerInputDidClose() {
        self.perform(self.closeState.partnerInputDidClose())
    }

    func partnerDidClose(graceful: Bool) {
        self.endpoint = nil
        self.perform(self.closeState.partnerDidClose(graceful: graceful))
    }

    func noteActivity() {
        self.sawActivity = true
    }

    private func perform(_ action: HalfCloseState.Action) {
        self.context?.perform(action, outputShutdown: &self.outputShutdown)
    }

    // MARK: Idle timer

    private func armTimer() {
        guard let context = self.context else { return }
        let period = TimeAmount.nanoseconds(max(self.forward.idleTimeout.nanoseconds / 2, 1_000_000))
        self.timer = try? context.eventLoop.assumeIsolated().scheduleCallback(in: period, handler: self)
    }

    private func cancelTimer() {
        self.timer?.cancel()
        self.timer = nil
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        self.timer = nil
        guard self.context != nil else { return }
        if case .closed = self.phase { return }
        if self.sawActivity {
            self.sawActivity = false
            self.quietPeriods = 0
        } else {
            self.quietPeriods += 1
            if self.quietPeriods >= 2 {
                self.core.logger.debug(
                    "tcp connection idle, closing",
                    metadata: ["service": "\(self.forward.service)"]
                )
                self.closeNow()
                return
            }
        }
        self.armTimer()
    }
}
