public import NIOCore
import NIOHTTP1
import NIOPosix

/// What the admin endpoint serves; the runtime provides it.
public protocol AdminContent: Sendable {
    /// `/healthz`: the process is alive and its event loops answer.
    func isHealthy() -> Bool
    /// `/readyz`: a valid plan is applied.
    func isReady() -> Bool
    /// `/plan`: the plan in force, as JSON.
    func planJSON() -> [UInt8]
    /// `/metrics`: Prometheus text exposition.
    func metricsText() -> [UInt8]
}

/// The admin HTTP endpoint: `/healthz`, `/readyz`, `/plan`, `/metrics`. Small and
/// separate from the data plane so it stays reachable when the data plane is loaded.
public final class AdminServer: Sendable {
    private let channel: any Channel

    /// The bound address (port 0 resolves here).
    public var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    public static func start(
        host: String,
        port: Int,
        group: any EventLoopGroup,
        content: any AdminContent
    ) async throws -> AdminServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(content: content))
                }
            }
            .bind(host: host, port: port)
            .get()
        return AdminServer(channel: channel)
    }

    public func close() async {
        try? await channel.close()
    }
}

private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let content: any AdminContent
    private var head: HTTPRequestHead?

    init(content: any AdminContent) {
        self.content = content
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        var status = HTTPResponseStatus.ok
        var contentType = "text/plain; charset=utf-8"
        var body: [UInt8]
        if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
            body = Array("only GET and HEAD\n".utf8)
        } else {
            switch path {
            case "/healthz":
                let healthy = content.isHealthy()
                status = healthy ? .ok : .serviceUnavailable
                body = Array((healthy ? "ok\n" : "unhealthy\n").utf8)
            case "/readyz":
                let ready = content.isReady()
                status = ready ? .ok : .serviceUnavailable
                body = Array((ready ? "ready\n" : "not ready: no valid plan applied yet\n").utf8)
            case "/plan":
                contentType = "application/json"
                body = content.planJSON()
            case "/metrics":
                contentType = "text/plain; version=0.0.4; charset=utf-8"
                body = content.metricsText()
            case "/":
                body = Array("Portico admin: /healthz /readyz /plan /metrics\n".utf8)
            default:
                status = .notFound
                body = Array("not found: \(path)\n".utf8)
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))),
                promise: nil
            )
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }
}
