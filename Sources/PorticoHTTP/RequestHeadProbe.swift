import NIOCore
import NIOHTTP1

/// Sits in front of the HTTP/1 decoder and measures the request line of a connection's first
/// request, so an oversized head can be told apart as 414 (request line) or 431 (header
/// section). It looks at bytes only until the first line ends, then forwards reads untouched.
///
/// Later requests on a keep-alive connection are not measured: their bytes may already have
/// passed while an earlier body was being decoded, so the probe cannot know where they start.
/// For them the decoder's per-field limit still bounds the request line, answered as 431.
final class RequestHeadProbe: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let maxRequestLineSize: Int
    private var armed = true
    private var lineLength = 0
    private var swallowing = false
    private var context: ChannelHandlerContext?

    /// The current request line exceeded the limit (or was still incomplete when the decoder overflowed).
    private(set) var requestLineTooLong = false
    /// The current request line has not been seen to end yet.
    var requestLineIncomplete: Bool { self.armed && self.lineLength > 0 }

    init(maxRequestLineSize: Int) {
        self.maxRequestLineSize = maxRequestLineSize
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes already-encoded bytes below the HTTP encoder (responses sent outside the HTTP exchange: 408).
    func writeRaw(_ buffer: ByteBuffer) -> EventLoopFuture<Void>? {
        guard let context = self.context else { return nil }
        return context.writeAndFlush(self.wrapOutboundOut(buffer))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.swallowing { return }
        if self.armed {
            let buffer = self.unwrapInboundIn(data)
            let view = buffer.readableBytesView
            if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                self.lineLength += newline - view.startIndex
                self.armed = false
            } else {
                self.lineLength += view.count
            }
            if self.lineLength > self.maxRequestLineSize {
                self.requestLineTooLong = true
                self.swallowing = true
                context.fireErrorCaught(HTTPParserError.headerOverflow)
                return
            }
        }
        context.fireChannelRead(data)
    }
}
