import Logging
import Metrics
import NIOCore
import NIOPosix

/// One client of a UDP listener: its upstream socket (connected to one endpoint), the
/// datagrams waiting while that socket is set up, and the datagrams of the current event-loop
/// tick not yet sent either way.
final class UDPFlow {
    let client: SocketAddress
    /// `client` where `sendmmsg` can point at it.
    let clientAddress: DatagramAddress
    let settings: UDPListenerSettings
    /// The prepared PROXY v2 header, when the forward asks for one.
    let proxyHeader: ByteBuffer?
    var handler: UDPFlowHandler?
    /// Datagrams (copies) held while the upstream socket is being set up.
    var queue: [ByteBuffer] = []
    /// Toward the endpoint, sent at the end of the tick.
    var outbound = DatagramBatch()
    /// Toward the client (replies), sent at the end of the tick.
    var replies = DatagramBatch()
    /// In the listener's list of flows to send at the end of the tick.
    var isPending = false
    var isClosed = false

    /// Datagrams held per flow while its upstream socket is being set up.
    static let maximumQueued = 64

    init(client: SocketAddress, settings: UDPListenerSettings, proxyHeader: ByteBuffer?) {
        self.client = client
        self.clientAddress = DatagramAddress(client)
        self.settings = settings
        self.proxyHeader = proxyHeader
    }
}

/// The listening UDP socket: demultiplexes datagrams to flows by client address and sends
/// the endpoints' replies from this socket, so they leave from the service address and port.
///
/// Everything (listener, flow sockets, the flow table) lives on this channel's event loop.
/// The listener reads with `recvmmsg` (vector reads); per datagram: one table lookup and one
/// copy into the flow's batch. Sends wait for the end of the event-loop tick: then every
/// flow's datagrams go to its endpoint in one `sendmmsg`, and all replies leave the listener
/// in one `sendmmsg`, with runs of same-size datagrams to one destination sent as a single
/// segmented datagram where the kernel offers it (``DatagramBatch``, ``DatagramSender``). A
/// batch past ``flushThreshold`` bytes is sent at once. Within a flow datagrams keep their
/// order: queued in order while it connects, batches keep order, one socket's sends stay in
/// order (``DatagramOutput``).
final class UDPListenerHandler: ChannelInboundHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let state: ListenerState<UDPListenerSettings>
    private let core: L4Core
    private var settings: UDPListenerSettings
    private var table: UDPFlowTable<SocketAddress, UDPFlow>
    private var context: ChannelHandlerContext?
    private var localAddress: SocketAddress?
    /// The listener's own sends (replies).
    private let output: DatagramOutput
    /// The largest datagram new flow sockets send in segmented runs (0 once refused).
    private var flowSegmentLimit: Int
    /// Flows with datagrams to send at the end of this tick.
    private var pendingFlows: [UDPFlow] = []
    private var flushScheduled = false
    /// The time of the current read burst (one clock read per burst, not per datagram).
    private var burstNow: NIODeadline?
    private var timer: NIOScheduledCallback?

    /// Bytes held in one batch past which it is sent without waiting for the end of the tick.
    static let flushThreshold = 16_384

    /// Datagrams per `recvmmsg` on the listener (each gets a 64 KiB slot of the read buffer).
    static let readSlots = 16

    /// SO_RCVBUF asked for on the listener, which takes every client's datagrams (the kernel
    /// caps it at net.core.rmem_max).
    static let receiveBufferSize: SocketOptionValue = 4 << 20

    /// The largest datagram sent in segmented runs. Every segment must fit the path MTU, or
    /// the kernel refuses the run (and ``DatagramSender`` sends it again one datagram at a
    /// time); 512 bytes fit any IPv4 path (the kernel's smallest path MTU is 552) and IPv6.
    static let segmentLimit = 512

    // Per-burst metric sums.
    private var datagramsIn = 0
    private var bytesIn = 0
    private var datagramsOut = 0
    private var bytesOut = 0

    /// `descriptor`: the listening socket, when it was made by ``UDPSocket`` (direct sends);
    /// nil sends through the channel.
    init(
        state: ListenerState<UDPListenerSettings>,
        core: L4Core,
        descriptor: CInt?,
        segmentLimit: Int = UDPListenerHandler.defaultSegmentLimit
    ) {
        self.state = state
        self.core = core
        self.settings = state.settings
        self.table = UDPFlowTable(
            capacity: self.settings.forward.maxFlows,
            idleTimeout: self.settings.forward.flowIdleTimeout
        )
        self.output = DatagramOutput(
            sender: descriptor.map { DatagramSender(descriptor: $0) },
            peer: nil,
            segmentLimit: segmentLimit
        )
        self.flowSegmentLimit = segmentLimit
    }

    /// ``segmentLimit`` where the kernel offers segmentation offload and direct sends; 0 elsewhere.
    static var defaultSegmentLimit: Int {
        DatagramSender.isSupported && DatagramSender.supportsSegmentation ? Self.segmentLimit : 0
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
        let now = self.burstTime()
        if let flow = self.table.lookup(envelope.remoteAddress, now: now) {
            self.send(envelope.data, through: flow, context: context)
        } else {
            // Vector reads hand out slices of one large receive buffer: what is kept is copied
            // out, so that NIO reuses that buffer for the next read.
            let payload = copyDatagram(envelope.data, allocator: context.channel.allocator)
            self.startFlow(for: envelope.remoteAddress, with: payload, now: now)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.burstNow = nil
        self.scheduleFlush()
        context.fireChannelReadComplete()
    }

    private func burstTime() -> NIODeadline {
        if let now = self.burstNow { return now }
        let now = NIODeadline.now()
        self.burstNow = now
        return now
    }

    /// `payload` may be a slice of the receive buffer: it is copied (into the batch or queue).
    private func send(_ payload: ByteBuffer, through flow: UDPFlow, context: ChannelHandlerContext) {
        guard let handler = flow.handler else {
            if flow.queue.count < UDPFlow.maximumQueued {
                flow.queue.append(copyDatagram(payload, allocator: context.channel.allocator))
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
        flow.outbound.append(
            payload,
            prefix: flow.proxyHeader,
            segmentLimit: handler.segmentLimit,
            allocator: context.channel.allocator
        )
        if flow.outbound.bytes >= Self.flushThreshold {
            self.sendOutbound(of: flow)
        } else {
            self.markPending(flow)
        }
    }

    private func markPending(_ flow: UDPFlow) {
        guard !flow.isPending else { return }
        flow.isPending = true
        self.pendingFlows.append(flow)
    }

    private func sendOutbound(of flow: UDPFlow) {
        guard let handler = flow.handler else {
            flow.outbound.removeAll()
            return
        }
        if handler.send(&flow.outbound) {
            self.flowSegmentLimit = 0
            self.core.logger.info(
                "udp segmentation offload refused toward an endpoint; sending single datagrams",
                metadata: ["service": "\(flow.settings.forward.service)"]
            )
        }
    }

    /// Sends every batch of this tick once the tick's I/O is done.
    private func scheduleFlush() {
        guard !self.flushScheduled, let context = self.context else { return }
        guard !self.pendingFlows.isEmpty else {
            self.reportMetrics()
            return
        }
        self.flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushAll()
        }
    }

    private func flushAll() {
        self.flushScheduled = false
        self.burstNow = nil
        var now: NIODeadline?
        var replies = false
        for flow in self.pendingFlows {
            flow.isPending = false
            if !flow.outbound.isEmpty {
                self.sendOutbound(of: flow)
            }
            if !flow.replies.isEmpty, let context = self.context {
                let time = now ?? .now()
                now = time
                self.table.touch(flow.client, now: time)
                self.output.write(&flow.replies, to: flow.clientAddress, context: context)
                replies = true
            }
        }
        self.pendingFlows.removeAll(keepingCapacity: true)
        if replies, let context = self.context {
            self.flushReplies(context: context)
        }
        self.reportMetrics()
    }

    private func flushReplies(context: ChannelHandlerContext) {
        let result = self.output.flush(context: context)
        if result.dropped > 0 {
            self.settings.metrics.datagramsDropped.increment(by: Int64(result.dropped))
        }
        if result.offloadRefused {
            self.core.logger.info(
                "udp segmentation offload refused toward a client; sending single datagrams",
                metadata: ["service": "\(self.settings.forward.service)"]
            )
        }
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
        let handler = UDPFlowHandler(flow: flow, listener: self, segmentLimit: self.flowSegmentLimit)
        let boundHandler = NIOLoopBound(handler, eventLoop: context.eventLoop)
        let bootstrap = DatagramBootstrap(group: context.eventLoop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            // Up to 16 replies per read event: a flow's replies of one tick leave together.
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(boundHandler.value)
                }
            }
        let connected: EventLoopFuture<any Channel>
        if DatagramSender.isSupported {
            // A socket of our own, connected here (names resolved as NIO's bootstrap does,
            // on this loop), so that its sends can bypass NIO's write path.
            do {
                let address: SocketAddress
                switch target {
                case .address(let resolved): address = resolved
                case .name(let host, let port): address = try SocketAddress.makeAddressResolvingHost(host, port: port)
                }
                let descriptor = try UDPSocket.connected(to: address)
                handler.adopt(descriptor: descriptor, peer: address)
                connected = bootstrap.withBoundSocket(descriptor)
            } catch {
                connected = context.eventLoop.makeFailedFuture(error)
            }
        } else {
            switch target {
            case .address(let address): connected = bootstrap.connect(to: address)
            case .name(let host, let port): connected = bootstrap.connect(host: host, port: port)
            }
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
                var batch = DatagramBatch()
                for payload in queued {
                    batch.append(
                        payload,
                        prefix: flow.proxyHeader,
                        segmentLimit: handler.segmentLimit,
                        allocator: channel.allocator
                    )
                }
                if handler.send(&batch) {
                    self.flowSegmentLimit = 0
                }
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

    /// A datagram from the endpoint of `flow`, to be sent back to its client from this socket.
    /// `payload` is a slice of the flow socket's receive buffer: it is copied into the batch.
    func reply(_ payload: ByteBuffer, from flow: UDPFlow) {
        guard !flow.isClosed, let context = self.context else { return }
        guard self.output.isWritable(context.channel) else {
            flow.settings.metrics.datagramsDropped.increment(by: 1)
            return
        }
        self.datagramsOut += 1
        self.bytesOut &+= payload.readableBytes
        flow.replies.append(payload, segmentLimit: self.output.segmentLimit, allocator: context.channel.allocator)
        if flow.replies.bytes >= Self.flushThreshold {
            self.table.touch(flow.client, now: self.burstTime())
            self.output.write(&flow.replies, to: flow.clientAddress, context: context)
            self.flushReplies(context: context)
        } else {
            self.markPending(flow)
        }
    }

    /// The end of a read burst on a flow socket.
    func flowReadComplete() {
        self.burstNow = nil
        self.scheduleFlush()
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
        flow.outbound.removeAll()
        flow.replies.removeAll()
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
    private var output: DatagramOutput
    private let initialSegmentLimit: Int

    init(flow: UDPFlow, listener: UDPListenerHandler, segmentLimit: Int) {
        self.flow = flow
        self.listener = listener
        self.initialSegmentLimit = segmentLimit
        self.output = DatagramOutput(sender: nil, peer: nil, segmentLimit: 0)
    }

    /// Sends through `descriptor` directly (a socket connected to `peer` by ``UDPSocket``).
    func adopt(descriptor: CInt, peer: SocketAddress) {
        self.output = DatagramOutput(
            sender: DatagramSender(descriptor: descriptor),
            peer: peer,
            segmentLimit: self.initialSegmentLimit
        )
    }

    var isWritable: Bool {
        guard let channel = self.context?.channel else { return false }
        return self.output.isWritable(channel)
    }

    var segmentLimit: Int { self.output.segmentLimit }

    /// Sends `batch` to the endpoint now (and empties it). Returns whether the route refused
    /// segmentation offload (the runs then went out one datagram at a time).
    @discardableResult
    func send(_ batch: inout DatagramBatch) -> Bool {
        guard let context = self.context else {
            batch.removeAll()
            return false
        }
        self.output.write(&batch, to: nil, context: context)
        let result = self.output.flush(context: context)
        if result.dropped > 0 {
            self.flow.settings.metrics.datagramsDropped.increment(by: Int64(result.dropped))
        }
        if result.fatalError != nil {
            // As a failed write used to: the flow ends; the client's next datagram opens another.
            context.close(promise: nil)
        }
        return result.offloadRefused
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.listener?.reply(self.unwrapInboundIn(data).data, from: self.flow)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.listener?.flowReadComplete()
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

    func close() {
        self.listener = nil
        self.context?.close(promise: nil)
    }
}

/// A datagram copied into a buffer of its own size. Datagrams arrive as slices of a receive
/// buffer (64 KiB per flow socket, several 64 KiB slots on the listener); a slice kept until
/// its send would keep that whole buffer alive, so NIO would allocate a fresh one for the next
/// read. With the bytes copied out, the receive buffer is uniquely owned again and NIO reuses it.
func copyDatagram(_ datagram: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
    var copy = allocator.buffer(capacity: datagram.readableBytes)
    copy.writeImmutableBuffer(datagram)
    return copy
}
