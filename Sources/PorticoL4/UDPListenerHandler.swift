import Logging
import Metrics
import NIOCore
import NIOPosix

/// One client of a UDP listener: its upstream socket (connected to one endpoint) and the
/// datagrams waiting while that socket is set up.
final class UDPFlow {
    let client: SocketAddress
    let settings: UDPListenerSettings
    /// The prepared PROXY v2 header, when the forward asks for one.
    let proxyHeader: ByteBuffer?
    var handler: UDPFlowHandler?
    var queue: [ByteBuffer] = []
    var needsFlush = false
    var isClosed = false

    /// Datagrams held per flow while its upstream socket is being set up.
    static let maximumQueued = 64

    init(client: SocketAddress, settings: UDPListenerSettings, proxyHeader: ByteBuffer?) {
        self.client = client
        self.settings = settings
        self.proxyHeader = proxyHeader
    }
}

/// The listening UDP socket: demultiplexes datagrams to flows by client address and sends
/// the endpoints' replies from this socket, so they leave from the service address and port.
///
/// Everything (listener, flow sockets, the flow table) lives on this channel's event loop.
/// Per datagram: one clock read, one table lookup, one write; flushes are coalesced per read
/// burst. Within a flow datagrams keep their order (queued in order while it connects).
final class UDPListenerHandler: ChannelInboundHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let state: ListenerState<UDPListenerSettings>
    private let core: L4Core
    private var settings: UDPListenerSettings
    private var table: UDPFlowTable<SocketAddress, UDPFlow>
    private var context: ChannelHandlerContext?
    private var localAddress: SocketAddress?
    private var flowsToFlush: [UDPFlow] = []
    private var repliesToFlush = false
    private var timer: NIOScheduledCallback?

    // Per-burst metric sums.
    private var datagramsIn = 0
    private var bytesIn = 0
    private var datagramsOut = 0
    private var bytesOut = 0

    init(state: ListenerState<UDPListenerSettings>, core: L4Core) {
        self.state = state
        self.core = core
        self.settings = state.settings
        self.table = UDPFlowTable(
            capacity: self.settings.forward.maxFlows,
            idleTimeout: self.settings.forward.flowIdleTimeout
        )
    }

    /// Flows currently in the table.
    var flowCount: Int { self.table.count }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.timer?.cancel()
        self.timer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.localAddress = context.channel.localAddress
        self.armTimer()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        let flows = self.table.removeAll()
        for flow in flows {
            self.retire(flow)
        }
        self.reportMetrics()
        context.fireChannelInactive()
    }

    // MARK: Client datagrams

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        self.datagramsIn += 1
        self.bytesIn &+= envelope.data.readableBytes
        let now = NIODeadline.now()
        let payload = compactDatagram(envelope.data, allocator: context.channel.allocator)
        if let flow = self.table.lookup(envelope.remoteAddress, now: now) {
            self.send(payload, through: flow)
        } else {
            self.startFlow(for: envelope.remoteAddress, with: payload, now: now)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for flow in self.flowsToFlush {
            flow.needsFlush = false
            flow.handler?.flush()
        }
        self.flowsToFlush.removeAll(keepingCapacity: true)
        self.reportMetrics()
        context.fireChannelReadComplete()
    }

    private func send(_ payload: ByteBuffer, through flow: UDPFlow) {
        guard let handler = flow.handler else {
            if flow.queue.count < UDPFlow.maximumQueued {
                flow.queue.append(payload)
            } else {
                flow.settings.metrics.datagramsDropped.increment(by: 1)
            }
            return
        }
        guard handler.isWritable else {
            // The upstream socket's send queue is full: UDP drops rather than buffers.
            flow.settings.metrics.datagramsDropped.increment(by: 1)
            return
        }
        handler.write(self.framed(payload, for: flow))
        if !flow.needsFlush {
            flow.needsFlush = true
            self.flowsToFlush.append(flow)
        }
    }

    private func framed(_ payload: ByteBuffer, for flow: UDPFlow) -> ByteBuffer {
        guard let header = flow.proxyHeader, let context = self.context else { return payload }
        var buffer = context.channel.allocator.buffer(capacity: header.readableBytes + payload.readableBytes)
        buffer.writeImmutableBuffer(header)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    private func startFlow(for client: SocketAddress, with payload: ByteBuffer, now: NIODeadline) {
        guard let context = self.context else { return }
        let (settings, start) = self.state.nextConnection { $0.endpoints.count }
        self.adopt(settings)
        guard let start else {
            settings.metrics.datagramsDropped.increment(by: 1)
            return
        }
        var proxyHeader: ByteBuffer?
        if settings.forward.sendProxyProtocol == .v2, let localAddress = self.localAddress {
            var buffer = context.channel.allocator.buffer(capacity: 52)
            ProxyHeader(source: client, destination: localAddress, transport: .datagram)
                .write(version: .v2, to: &buffer)
            proxyHeader = buffer
        }
        let flow = UDPFlow(client: client, settings: settings, proxyHeader: proxyHeader)
        guard self.table.insert(client, flow, now: now) else {
            settings.metrics.flowsDropped.increment(by: 1)
            return
        }
        settings.metrics.flowsActive.increment(by: 1)
        flow.queue.append(payload)
        self.connect(flow, to: settings.endpoints[start], context: context)
    }

    private func connect(_ flow: UDPFlow, to target: ResolvedEndpoint, context: ChannelHandlerContext) {
        let handler = UDPFlowHandler(flow: flow, listener: self)
        let boundHandler = NIOLoopBound(handler, eventLoop: context.eventLoop)
        let bootstrap = DatagramBootstrap(group: context.eventLoop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
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
                guard !flow.isClosed else {
                    channel.close(promise: nil)
                    return
                }
                flow.handler = handler
                let queued = flow.queue
                flow.queue = []
                for payload in queued {
                    handler.write(self.framed(payload, for: flow))
                }
                handler.flush()
            case .failure(let error):
                flow.settings.metrics.connectFailures.increment(by: 1)
                self.core.logger.info(
                    "udp endpoint socket failed",
                    metadata: [
                        "service": "\(flow.settings.forward.service)", "endpoint": "\(target)",
                        "error": "\(error)",
                    ]
                )
                self.flowClosed(flow)
            }
        }
    }

    // MARK: Replies

    /// A datagram from the endpoint of `flow`: sent back to its client from this socket.
    func reply(_ payload: ByteBuffer, from flow: UDPFlow) {
        guard !flow.isClosed, let context = self.context else { return }
        guard context.channel.isWritable else {
            flow.settings.metrics.datagramsDropped.increment(by: 1)
            return
        }
        self.table.touch(flow.client, now: .now())
        self.datagramsOut += 1
        self.bytesOut &+= payload.readableBytes
        context.write(self.wrapOutboundOut(AddressedEnvelope(remoteAddress: flow.client, data: payload)), promise: nil)
        self.repliesToFlush = true
    }

    /// The end of a read burst on a flow socket.
    func flushReplies() {
        guard self.repliesToFlush, let context = self.context else { return }
        self.repliesToFlush = false
        context.flush()
        self.reportMetrics()
    }

    /// The flow's socket closed (error such as ICMP port unreachable, or its connect failed).
    func flowClosed(_ flow: UDPFlow) {
        guard !flow.isClosed else { return }
        if let current = self.table.peek(flow.client), current === flow {
            self.table.evict(flow.client)
        }
        self.retire(flow)
    }

    /// Marks a flow gone (already out of the table) and closes its socket.
    private func retire(_ flow: UDPFlow) {
        guard !flow.isClosed else { return }
        flow.isClosed = true
        flow.queue = []
        flow.settings.metrics.flowsActive.decrement(by: 1)
        let handler = flow.handler
        flow.handler = nil
        handler?.close()
    }

    private func reportMetrics() {
        let metrics = self.settings.metrics
        if self.datagramsIn > 0 {
            metrics.datagramsFromClients.increment(by: Int64(self.datagramsIn))
            metrics.bytesFromClients.increment(by: Int64(self.bytesIn))
            self.datagramsIn = 0
            self.bytesIn = 0
        }
        if self.datagramsOut > 0 {
            metrics.datagramsToClients.increment(by: Int64(self.datagramsOut))
            metrics.bytesToClients.increment(by: Int64(self.bytesOut))
            self.datagramsOut = 0
            self.bytesOut = 0
        }
    }

    // MARK: Expiry

    /// Takes a new settings generation (after a reload): new limits apply from now on.
    private func adopt(_ settings: UDPListenerSettings) {
        guard settings !== self.settings else { return }
        self.reportMetrics()
        self.settings = settings
        self.table.capacity = settings.forward.maxFlows
        self.table.idleTimeout = settings.forward.flowIdleTimeout
    }

    private func armTimer() {
        guard let context = self.context else { return }
        let quarter = self.table.idleTimeout.nanoseconds / 4
        let period = TimeAmount.nanoseconds(min(max(quarter, 10_000_000), 1_000_000_000))
        self.timer = try? context.eventLoop.assumeIsolated().scheduleCallback(in: period, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        self.timer = nil
        guard let context = self.context, context.channel.isActive else { return }
        self.adopt(self.state.settings)
        for (_, flow) in self.table.expire(now: .now()) {
            self.retire(flow)
        }
        self.armTimer()
    }
}

/// The upstream socket of one UDP flow, connected to its endpoint.
final class UDPFlowHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = ByteBuffer

    private let flow: UDPFlow
    private var listener: UDPListenerHandler?
    private var context: ChannelHandlerContext?

    init(flow: UDPFlow, listener: UDPListenerHandler) {
        self.flow = flow
        self.listener = listener
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.listener?.reply(
            compactDatagram(self.unwrapInboundIn(data).data, allocator: context.channel.allocator),
            from: self.flow
        )
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.listener?.flushReplies()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Typically ECONNREFUSED (ICMP port unreachable): the next datagram starts a new flow.
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let listener = self.listener
        self.listener = nil
        listener?.flowClosed(self.flow)
        context.fireChannelInactive()
    }

    func write(_ buffer: ByteBuffer) {
        self.context?.write(self.wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func close() {
        self.listener = nil
        self.context?.close(promise: nil)
    }
}

/// A small datagram copied out of its 64 KiB receive buffer. The datagram is a slice of that
/// buffer; holding the slice until the write completes keeps the whole buffer alive, so NIO
/// allocates a fresh 64 KiB for the next read (and faults its pages in). With the bytes copied
/// into a right-sized buffer, the receive buffer is uniquely owned again and NIO reuses it.
/// Large datagrams keep their slice (the copy would cost more than it saves).
func compactDatagram(_ datagram: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
    guard datagram.readableBytes <= 2048 else { return datagram }
    var copy = allocator.buffer(capacity: datagram.readableBytes)
    copy.writeImmutableBuffer(datagram)
    return copy
}
