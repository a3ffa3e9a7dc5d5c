import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// ingress-nginx `auth-url` / `auth-signin` / `auth-response-headers`: before a request is
/// proxied, a GET with its headers goes to ``url``. 2xx lets it through (with the named
/// response headers copied into it); 401 redirects to ``signin`` when set (with `rd=` the
/// original URL), else answers 401; 403 answers 403; anything else, or no answer, 500.
public struct ForwardAuth: Sendable {
    public let url: String
    let tls: Bool
    let host: String
    let port: Int
    /// Path and query of the auth URL.
    let target: String
    /// The `Host` header sent: the URL's host and, when not the default, its port.
    let authority: String
    /// Where 401 answers are redirected to (`auth-signin`).
    public var signin: String?
    /// Auth response headers copied into the proxied request (`auth-response-headers`).
    public var responseHeaders: [String]

    /// Parses an absolute `http://` or `https://` URL; nil when it is not one.
    public init?(url: String, signin: String? = nil, responseHeaders: [String] = []) {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst(7)
        } else {
            return nil
        }
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<slash]
        rest = rest[slash...]
        var host = authority
        var port = tls ? 443 : 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"),
            let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed)
        {
            host = authority[..<colon]
            port = parsed
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        self.url = url
        self.tls = tls
        self.host = String(host)
        self.port = port
        self.authority = String(authority)
        self.target = rest.isEmpty ? "/" : (rest.hasPrefix("?") ? "/" + rest : String(rest))
        self.signin = signin
        self.responseHeaders = responseHeaders
    }
}

/// The auth service's verdict on one request.
struct ForwardAuthAnswer {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
}

/// One auth subrequest on its own connection (no pooling: auth services are usually next
/// to the proxy and a connect is cheap next to what they do).
enum ForwardAuthClient {
    /// Headers of the original request that are not forwarded to the auth service.
    private static let dropped: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
        "trailer", "upgrade", "expect",
    ]

    static func request(
        _ auth: ForwardAuth,
        original: HTTPRequestHead,
        originalURL: String,
        clientAddress: String,
        scheme: String,
        host: String,
        timeout: TimeAmount,
        tlsContext: NIOSSLContext?,
        eventLoop: any EventLoop
    ) -> EventLoopFuture<ForwardAuthAnswer> {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: auth.authority)
        for (name, value) in original.headers where !Self.dropped.contains(name.lowercased()) {
            headers.add(name: name, value: value)
        }
        headers.replaceOrAdd(name: "x-original-url", value: originalURL)
        headers.replaceOrAdd(name: "x-original-uri", value: original.uri)
        headers.replaceOrAdd(name: "x-original-method", value: original.method.rawValue)
        headers.replaceOrAdd(name: "x-auth-request-redirect", value: original.uri)
        headers.replaceOrAdd(name: "x-forwarded-for", value: clientAddress)
        headers.replaceOrAdd(name: "x-real-ip", value: clientAddress)
        headers.replaceOrAdd(name: "x-forwarded-proto", value: scheme)
        headers.replaceOrAdd(name: "x-forwarded-host", value: host)
        headers.replaceOrAdd(name: "x-sent-from", value: "portico")
        headers.add(name: "connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: auth.target, headers: headers)

        let promise = eventLoop.makePromise(of: ForwardAuthAnswer.self)
        let serverName = auth.host.contains(":") || auth.host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : auth.host
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tlsContext, serverHostname: serverName)
                        )
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AnswerHandler(head: head, promise: promise))
                }
            }
            .connect(host: auth.host, port: auth.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // Bounded: an auth service that never answers is a failure, not a hang.
                    let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                    promise.futureResult.whenComplete { _ in
                        timer.cancel()
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    promise.fail(error)
                }
            }
        return promise.futureResult
    }

    /// Sends the GET once active and completes with the response head (the body is discarded).
    private final class AnswerHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        private let head: HTTPRequestHead
        private let promise: EventLoopPromise<ForwardAuthAnswer>
        private var completed = false

        init(head: HTTPRequestHead, promise: EventLoopPromise<ForwardAuthAnswer>) {
            self.head = head
            self.promise = promise
        }

        func channelActive(context: ChannelHandlerContext) {
            context.write(self.wrapOutboundOut(.head(self.head)), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let response) = self.unwrapInboundIn(data), !self.completed {
                self.completed = true
                self.promise.succeed(ForwardAuthAnswer(status: response.status, headers: response.headers))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.fail(ChannelError.eof)
            context.fireChannelInactive()
        }

        private func fail(_ error: any Error) {
            guard !self.completed else { return }
            self.completed = true
            self.promise.fail(error)
        }
    }
}
