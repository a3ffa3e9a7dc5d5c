import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A small HTTP/1.1 server started inside a test, standing in for a Service endpoint.
///
/// Paths: `/count` consumes the request body and answers `received N`; `/download?n=N`
/// streams N bytes (chunked); `/chunked` answers in three chunks; `/slow` never answers;
/// `/auth` is a forward-auth service (403 when the original URI contains `deny`, 401 for
/// `login`, 502 for `broken`, else 200 with `x-auth-user: alice`); `/drop-next` answers, then closes the connection when the next request arrives on it;
/// `/ws` with `Upgrade: echo` switches to a raw byte echo; anything else answers
/// `upstream NAME METHOD URI` followed by the request headers, one per line.
/// Names of test upstreams whose `/healthz` answers 503 (health check tests flip them).
let sickUpstreams = NIOLockedValueBox<Set<String>>([])

final class TestUpstream: Sendable {
    let name: String
    let channel: any Channel
    let connectionsAccepted = Atomic<Int>(0)

    var port: Int { self.channel.localAddress!.port! }

    private init(name: String, channel: any Channel) {
        self.name = name
        self.channel = channel
    }

    static func start(name: String, group: any EventLoopGroup, tls: NIOSSLContext? = nil) async throws -> TestUpstream {
        let box = NIOLockedValueBox<TestUpstream?>(nil)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    box.withLockedValue { $0 }?.connectionsAccepted.add(1, ordering: .relaxed)
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [EchoUpgrader()],
                            completionHandler: { _ in }
                        )
                    )
                    try channel.pipeline.syncOperations.addHandler(TestUpstreamHandler(name: name))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let upstream = TestUpstream(name: name, channel: channel)
        box.withLockedValue { $0 = upstream }
        return upstream
    }

    func stop() async {
        try? await self.channel.close()
    }
}

private final class TestUpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    private var head: HTTPRequestHead?
    private var received = 0
    private var dropNext = false

    init(name: String) {
        self.name = name
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            if self.dropNext {
                context.close(promise: nil)
                return
            }
            self.head = head
            self.received = 0
        case .body(let buffer):
            self.received += buffer.readableBytes
        case .end:
            guard let head = self.head else { return }
            self.respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        switch path {
        case "/slow":
            return
        case "/drop-next":
            self.dropNext = true
            self.send(context: context, head: head, body: "dropping the next request")
        case "/count":
            self.send(context: context, head: head, body: "received \(self.received)")
        case "/healthz":
            let sick = sickUpstreams.withLockedValue { $0.contains(self.name) }
            self.send(
                context: context,
                head: head,
                body: sick ? "sick" : "ok",
                status: sick ? .serviceUnavailable : .ok
            )
        case "/auth":
            // A forward-auth service: the verdict depends on the original request's URI.
            let original = head.headers.first(name: "x-original-uri") ?? ""
            let seen =
                "method=\(head.headers.first(name: "x-original-method") ?? "") url=\(head.headers.first(name: "x-original-url") ?? "")"
            if original.contains("deny") {
                self.send(context: context, head: head, body: seen, status: .forbidden)
            } else if original.contains("login") {
                self.send(
                    context: context,
                    head: head,
                    body: seen,
                    status: .unauthorized,
                    extra: [("www-authenticate", "Basic realm=\"t\"")]
                )
            } else if original.contains("broken") {
                self.send(context: context, head: head, body: seen, status: .badGateway)
            } else {
                self.send(
                    context: context,
                    head: head,
                    body: seen,
                    extra: [("x-auth-user", "alice"), ("x-auth-other", "no")]
                )
            }
        case "/chunked":
            var headers = HTTPHeaders()
            headers.add(name: "transfer-encoding", value: "chunked")
            context.write(
                self.wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))),
                promise: nil
            )
            for piece in ["one,", "two,", "three"] {
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: piece)))), promise: nil)
            }
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        case "/download":
            let total = Int(head.uri.split(separator: "=").last ?? "0") ?? 0
            var headers = HTTPHeaders()
            headers.add(name: "transfer-encoding", value: "chunked")
            context.write(
                self.wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))),
                promise: nil
            )
            self.stream(context: context, remaining: total)
        default:
            var lines = "upstream \(self.name) \(head.method.rawValue) \(head.uri)\n"
            for (name, value) in head.headers {
                lines += "\(name.lowercased()): \(value)\n"
            }
            self.send(context: context, head: head, body: lines)
        }
    }

    private func send(
        context: ChannelHandlerContext,
        head: HTTPRequestHead,
        body: String,
        status: HTTPResponseStatus = .ok,
        extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders(extra)
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "keep-alive", value: "timeout=5")
        headers.add(name: "x-upstream", value: self.name)
        context.write(
            self.wrapOutboundOut(.head(.init(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Writes 64 KB chunks, the next one only when the previous reached the kernel (from a new
    /// turn of the loop: a write that completes at once would otherwise recurse, and every
    /// frame would hold its chunk while a fast reader takes the whole body).
    private func stream(context: ChannelHandlerContext, remaining: Int) {
        if remaining == 0 {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let size = min(remaining, 64 * 1024)
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(chunk)))).whenSuccess {
            context.eventLoop.assumeIsolated().execute {
                let (handler, context) = loopBound.value
                handler.stream(context: context, remaining: remaining - size)
            }
        }
    }
}

/// Upgrades `Upgrade: echo` requests to a raw echo of every byte.
private struct EchoUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let supportedProtocol = "echo"
    let requiredUpgradeHeaders: [String] = []

    func buildUpgradeResponse(
        channel: any Channel,
        upgradeRequest: HTTPRequestHead,
        initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        channel.eventLoop.makeSucceededFuture(initialResponseHeaders)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        context.eventLoop.makeCompletedFuture {
            let operations = context.pipeline.syncOperations
            _ = operations.removeHandler(try operations.handler(type: TestUpstreamHandler.self))
            try operations.addHandler(EchoHandler())
        }
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        var reply = context.channel.allocator.buffer(string: "echo:")
        reply.writeBuffer(&buffer)
        context.writeAndFlush(self.wrapOutboundOut(reply), promise: nil)
    }
}
