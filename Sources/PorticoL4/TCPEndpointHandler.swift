import NIOCore

/// The endpoint side of one forwarded TCP connection (same event loop as the client side).
///
/// Bytes read here go straight to ``TCPClientHandler`` (flushed per read burst); reads are
/// withheld while the client channel is not writable; EOF and close follow ``HalfCloseState``.
final class TCPEndpointHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var client: TCPClientHandler?
    private let metrics: TCPMetrics
    private var context: ChannelHandlerContext?
    private var closeState = HalfCloseState()
    private var outputShutdown: EventLoopFuture<Void>?
    private var readPending = false
    private var bytesRead = 0
    private var wasActive = false

    init(client: TCPClientHandler, metrics: TCPMetrics) {
        self.client = client
        self.metrics = metrics
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.client = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.wasActive = true
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.bytesRead &+= buffer.readableBytes
        self.client?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let client = self.client {
            client.partnerFlush()
            client.noteActivity()
        }
        if self.bytesRead > 0 {
            self.metrics.bytesToClients.increment(by: Int64(self.bytesRead))
            self.bytesRead = 0
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let client = self.client, !client.isWritable {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.client?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.perform(self.closeState.inputDidClose())
            self.client?.partnerInputDidClose()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.bytesRead > 0 {
            self.metrics.bytesToClients.increment(by: Int64(self.bytesRead))
            self.bytesRead = 0
        }
        let client = self.client
        self.client = nil
        // A failed connect attempt never became active: the client tries the next endpoint.
        if self.wasActive {
            client?.partnerDidClose(graceful: true)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.perform(self.closeState.closeNow())
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
        self.client = nil
        self.perform(self.closeState.partnerDidClose(graceful: graceful))
    }

    private func perform(_ action: HalfCloseState.Action) {
        self.context?.perform(action, outputShutdown: &self.outputShutdown)
    }
}
