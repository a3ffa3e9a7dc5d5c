import Foundation
public import Logging
public import Metrics
public import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP boot listener: iPXE scripts, answer files, assets (with ranges), boot loaders and
/// the install-completion callback, as ``NetbootHTTPResponder`` decides. One log line and one
/// metric per boot step.
public final class NetbootHTTPServer: Sendable {
    private let channel: any Channel

    /// The bound address.
    public var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Listens on `host:port` and serves with `responder`.
    public static func start(
        host: String,
        port: Int,
        responder: NetbootHTTPResponder,
        group: any EventLoopGroup,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) async throws -> NetbootHTTPServer {
        let metrics = NetbootHTTPMetrics(factory: metricsFactory)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        NetbootHTTPHandler(responder: responder, logger: logger, metrics: metrics)
                    )
                }
            }
            .bind(host: host, port: port)
            .get()
        logger.info(
            "netboot http listening",
            metadata: ["http.address": "\(channel.localAddress.map { "\($0)" } ?? "?")"]
        )
        return NetbootHTTPServer(channel: channel)
    }

    /// Stops listening (connections in progress finish).
    public func close() async {
        try? await self.channel.close()
    }
}

struct NetbootHTTPMetrics: Sendable {
    let scripts: Counter
    let answers: Counter
    let installs: Counter
    let bootLoaders: Counter
    let assets: Counter
    let assetBytes: Counter
    let refused: Counter

    init(factory: any MetricsFactory) {
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        self.scripts = counter("portico_netboot_http_responses_total", [("kind", "ipxe_script")])
        self.answers = counter("portico_netboot_http_responses_total", [("kind", "answer_file")])
        self.bootLoaders = counter("portico_netboot_http_responses_total", [("kind", "boot_loader")])
        self.assets = counter("portico_netboot_http_responses_total", [("kind", "asset")])
        self.refused = counter("portico_netboot_http_responses_total", [("kind", "error")])
        self.installs = counter("portico_netboot_installs_completed_total")
        self.assetBytes = counter("portico_netboot_asset_bytes_sent_total")
    }
}

private final class NetbootHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let chunkSize = 256 * 1024

    private let responder: NetbootHTTPResponder
    private let logger: Logger
    private let metrics: NetbootHTTPMetrics
    private var head: HTTPRequestHead?

    init(responder: NetbootHTTPResponder, logger: Logger, metrics: NetbootHTTPMetrics) {
        self.responder = responder
        self.logger = logger
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let now = Int(Date().timeIntervalSince1970)
        let client = context.channel.remoteAddress.map { "\($0)" } ?? "?"
        switch self.responder.respond(method: head.method.rawValue, uri: head.uri, now: now) {
        case .body(let status, let contentType, let bytes, let event):
            if let event { self.record(event, bytes: bytes.count, client: client) }
            if status >= 400 {
                self.metrics.refused.increment()
                self.logger.info(
                    "netboot http refused",
                    metadata: ["http.uri": "\(head.uri)", "http.status": "\(status)", "http.client": "\(client)"]
                )
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: String(bytes.count))
            headers.add(name: "Cache-Control", value: "no-store")
            self.send(
                head: head,
                status: HTTPResponseStatus(statusCode: status),
                headers: headers,
                body: context.channel.allocator.buffer(bytes: bytes),
                context: context
            )
        case .asset(let path):
            self.sendAsset(path, head: head, client: client, context: context)
        }
    }

    private func record(_ event: NetbootHTTPResponder.Event, bytes: Int, client: String) {
        switch event {
        case .scriptServed(let machine, let installing):
            self.metrics.scripts.increment()
            self.logger.info(
                "netboot ipxe script served",
                metadata: [
                    "netboot.machine": "\(machine)", "netboot.boot": "\(installing ? "install" : "local")",
                    "http.client": "\(client)",
                ]
            )
        case .answerServed(let machine, let file):
            self.metrics.answers.increment()
            self.logger.info(
                "netboot answer file served",
                metadata: [
                    "netboot.machine": "\(machine)", "netboot.file": "\(file)", "http.bytes": "\(bytes)",
                    "http.client": "\(client)",
                ]
            )
        case .installCompleted(let machine, let installs):
            self.metrics.installs.increment()
            self.logger.notice(
                "netboot install completed: the machine boots its local disk from now on",
                metadata: [
                    "netboot.machine": "\(machine)", "netboot.installs": "\(installs)", "http.client": "\(client)",
                ]
            )
        case .bootLoaderServed(let file):
            self.metrics.bootLoaders.increment()
            self.logger.info(
                "netboot boot loader served",
                metadata: ["netboot.file": "\(file)", "http.bytes": "\(bytes)", "http.client": "\(client)"]
            )
        }
    }

    private func send(
        head: HTTPRequestHead,
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer?,
        context: ChannelHandlerContext
    ) {
        var headers = headers
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        if let body, head.method != .HEAD, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        self.finish(keepAlive: keepAlive, context: context)
    }

    private func finish(keepAlive: Bool, context: ChannelHandlerContext) {
        let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }

    private func sendAsset(_ path: String, head: HTTPRequestHead, client: String, context: ChannelHandlerContext) {
        let source: TFTPFileSource
        do {
            source = try TFTPFileSource.opening(path: path, mode: .octet)
        } catch {
            self.metrics.refused.increment()
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "10")
            self.send(
                head: head,
                status: .notFound,
                headers: headers,
                body: context.channel.allocator.buffer(string: "not found\n"),
                context: context
            )
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Accept-Ranges", value: "bytes")
        let range: Range<Int>
        let status: HTTPResponseStatus
        switch ByteRangeRequest(header: head.headers.first(name: "Range"), size: source.size) {
        case .whole:
            range = 0..<source.size
            status = .ok
        case .partial(let requested):
            range = requested
            status = .partialContent
            headers.add(
                name: "Content-Range",
                value: "bytes \(requested.lowerBound)-\(requested.upperBound - 1)/\(source.size)"
            )
        case .unsatisfiable:
            source.close()
            headers.add(name: "Content-Range", value: "bytes */\(source.size)")
            headers.add(name: "Content-Length", value: "0")
            self.send(head: head, status: .rangeNotSatisfiable, headers: headers, body: nil, context: context)
            return
        }
        headers.add(name: "Content-Length", value: String(range.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        self.metrics.assets.increment()
        self.logger.info(
            "netboot asset served",
            metadata: [
                "netboot.file": "\(path)", "http.range": "\(range.lowerBound)-\(range.upperBound)",
                "http.status": "\(status.code)", "http.client": "\(client)",
            ]
        )
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        if head.method == .HEAD {
            source.close()
            self.finish(keepAlive: keepAlive, context: context)
            return
        }
        self.stream(source, remaining: range, keepAlive: keepAlive, context: context)
    }

    /// Sends `remaining` in chunks, each after the previous one is written (bounded memory).
    private func stream(
        _ source: TFTPFileSource,
        remaining: Range<Int>,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        guard !remaining.isEmpty else {
            source.close()
            self.finish(keepAlive: keepAlive, context: context)
            return
        }
        let chunk = remaining.lowerBound..<min(remaining.lowerBound + Self.chunkSize, remaining.upperBound)
        var buffer = context.channel.allocator.buffer(capacity: chunk.count)
        if source.read(chunk, into: &buffer) != nil {
            source.close()
            context.close(promise: nil)
            return
        }
        self.metrics.assetBytes.increment(by: chunk.count)
        let written = context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(buffer))))
        let bound = NIOLoopBound((self, context, source), eventLoop: context.eventLoop)
        let rest = chunk.upperBound..<remaining.upperBound
        written.whenComplete { result in
            let (handler, context, source) = bound.value
            switch result {
            case .success: handler.stream(source, remaining: rest, keepAlive: keepAlive, context: context)
            case .failure: source.close()
            }
        }
    }
}
