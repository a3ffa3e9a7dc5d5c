import Logging
import NIOCore
import PorticoL4

/// The client address a PROXY protocol header carried for one downstream connection, set by
/// ``ProxyProtocolHandler`` before any byte reaches the HTTP handlers. Event-loop bound.
typealias CarriedClientAddress = NIOLoopBoundBox<SocketAddress?>

/// First in the pipeline of a connection from a peer trusted to send a PROXY protocol header
/// (``HTTPListener/acceptProxyProtocolFrom``): reads the header (v1 or v2, possibly split
/// across reads, bounded by ``ProxyHeaderDecoder``), records its source address, forwards
/// the bytes that follow and leaves. A missing or malformed header closes the connection.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let decoder = ProxyHeaderDecoder()
    private let carried: CarriedClientAddress
    private let logger: Logger
    private var accumulated: ByteBuffer?
    private var decoded = false
    private var forwarded = false

    init(carried: CarriedClientAddress, logger: Logger) {
        self.carried = carried
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        guard !self.decoded else {
            // Bytes of the same read burst after the header.
            self.forwarded = true
            context.fireChannelRead(self.wrapInboundOut(buffer))
            return
        }
        if var accumulated = self.accumulated {
            accumulated.writeBuffer(&buffer)
            buffer = accumulated
        }
        do {
            guard let header = try self.decoder.decode(&buffer) else {
                self.accumulated = buffer
                return
            }
            self.decoded = true
            self.accumulated = nil
            if header.command == .proxy, let source = header.source {
                self.carried.value = source
            }
            if buffer.readableBytes > 0 {
                self.forwarded = true
                context.fireChannelRead(self.wrapInboundOut(buffer))
            }
        } catch {
            self.logger.warning(
                "http connection closed: malformed PROXY header from a trusted peer",
                metadata: [
                    "peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")",
                    "error": "\(error)",
                ]
            )
            self.accumulated = nil
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // No read-complete for bytes the HTTP handlers never saw (an incomplete header).
        if self.forwarded {
            context.fireChannelReadComplete()
        }
        if self.decoded {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.accumulated = nil
        context.fireChannelInactive()
    }
}
