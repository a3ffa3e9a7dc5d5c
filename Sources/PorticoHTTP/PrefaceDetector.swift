import NIOCore

/// First on a plain-HTTP connection: waits until the first bytes show whether they start the
/// HTTP/2 connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, h2c with prior knowledge)
/// or not, calls `configure` once with the answer (which adds the protocol's handlers after
/// this one), and leaves; the bytes it held are passed on to those handlers. An HTTP/1.1
/// request is recognised at its first byte (no method starts with `P`, `R`, `I` and a space).
final class PrefaceDetector: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let configure: (_ isHTTP2: Bool) throws -> Void
    private let timeout: TimeAmount
    private var decided = false
    private var timer: Scheduled<Void>?

    /// `timeout`: a connection that sends too little to decide within it is closed (the
    /// request handlers, which own the header timeout afterwards, do not exist yet).
    init(timeout: TimeAmount, configure: @escaping (_ isHTTP2: Bool) throws -> Void) {
        self.timeout = timeout
        self.configure = configure
    }

    func decoderAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        self.timer = context.eventLoop.scheduleTask(in: self.timeout) { channel.close(promise: nil) }
    }

    func decoderRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard !self.decided else { return .needMoreData }
        let available = buffer.readableBytesView.prefix(Self.preface.count)
        let matches = available.elementsEqual(Self.preface.prefix(available.count))
        if matches && available.count < Self.preface.count {
            return .needMoreData
        }
        self.decided = true
        self.timer?.cancel()
        self.timer = nil
        try self.configure(matches)
        // Removal hands the buffered bytes to the handlers just added.
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        return .needMoreData
    }

    /// Called on removal (and at EOF): hands what was held to the handlers behind.
    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if self.decided, buffer.readableBytes > 0 {
            let bytes = buffer.readSlice(length: buffer.readableBytes)!
            context.fireChannelRead(Self.wrapInboundOut(bytes))
            // The read burst that brought them has completed already; handlers flush on this.
            context.fireChannelReadComplete()
        }
        return .needMoreData
    }
}
