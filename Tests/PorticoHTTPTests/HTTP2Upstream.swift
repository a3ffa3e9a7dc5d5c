import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// A gRPC-like HTTP/2 server for the GRPC/GRPCS upstream tests: prior knowledge in plain text,
/// or TLS with ALPN h2. Every stream is answered with a body naming what it saw (method, path,
/// `te`, `content-type`, the body length) and the trailer `grpc-status: 0`.
final class HTTP2TestUpstream: Sendable {
    let channel: any Channel
    var port: Int { self.channel.localAddress!.port! }

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func start(group: any EventLoopGroup, tls: NIOSSLContext? = nil) async throws -> HTTP2TestUpstream {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let tls { try operations.addHandler(NIOSSLServerHandler(context: tls)) }
                    _ = try operations.configureHTTP2Pipeline(
                        mode: .server,
                        connectionConfiguration: NIOHTTP2Handler.ConnectionConfiguration(),
                        streamConfiguration: NIOHTTP2Handler.StreamConfiguration()
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                            try stream.pipeline.syncOperations.addHandler(Responder())
                        }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HTTP2TestUpstream(channel: channel)
    }

    func stop() async {
        try? await self.channel.close()
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private var head: HTTPRequestHead?
        private var received = 0

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body(let buffer):
                self.received += buffer.readableBytes
            case .end:
                guard let head = self.head else { return }
                let body = """
                    h2 \(head.method.rawValue) \(head.uri) te=\(head.headers.first(name: "te") ?? "-") \
                    content-type=\(head.headers.first(name: "content-type") ?? "-") received=\(self.received)
                    """
                var headers = HTTPHeaders([("content-type", "application/grpc")])
                headers.add(name: "x-upstream", value: "h2")
                context.write(
                    self.wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))),
                    promise: nil
                )
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(
                    self.wrapOutboundOut(.end(HTTPHeaders([("grpc-status", "0"), ("grpc-message", "ok")]))),
                    promise: nil
                )
            }
        }
    }
}
