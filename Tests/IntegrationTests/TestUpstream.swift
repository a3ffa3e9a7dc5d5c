import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 upstream for the serve tests: answers every request with
/// `upstream <name>: <METHOD> <URI>` and echoes selected request headers back as
/// `x-seen-<name>` response headers.
final class TestUpstream: Sendable {
    let channel: any Channel
    let port: Int

    init(name: String) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(name: name))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        port = channel.localAddress?.port ?? 0
    }

    func close() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let name: String
        var head: HTTPRequestHead?

        init(name: String) {
            self.name = name
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head else { return }
                let body = "upstream \(name): \(head.method) \(head.uri)\n"
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                for seen in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "host", "ssl-client-verify"] {
                    if let value = head.headers.first(name: seen) { headers.add(name: "x-seen-\(seen)", value: value) }
                }
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
                    promise: nil
                )
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
