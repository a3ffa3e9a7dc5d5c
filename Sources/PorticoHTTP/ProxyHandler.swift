import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTP2
import PorticoRouting

/// The downstream end of one client connection: routes each request, leases an upstream
/// connection of the same event loop, streams both bodies with backpressure and answers
/// locally (404/502/503/504/413/308/...) when the request cannot be proxied.
///
/// Backpressure: the downstream `read` is withheld while the upstream is connecting or not
/// writable; the upstream `read` is withheld while the downstream is not writable.
/// Flushes are coalesced per read burst of the side that produced the bytes.
///
/// HTTP/1.1 connections: this is the only handler after TLS. It reads raw bytes and decodes
/// them itself (``HTTP1RequestDecoder``), writes raw bytes (``HTTP1Encoder``). HTTP/2 streams:
/// not in any pipeline; its ``HTTP2ServerConnection`` hands it request parts and takes its
/// response parts by method calls.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Phase {
        /// No request yet on this keep-alive connection (idle timeout applies).
        case idle
        /// Bytes of a request head arrived but not the whole head (header timeout applies).
        case readingHead
        /// Waiting for an upstream connection.
        case connecting
        /// Request forwarded, streaming.
        case proxying
        /// A local response was written; waiting for the request's end.
        case respondedLocally
        /// Tunnel installed; this handler is leaving the pipeline.
        case upgraded
        /// Closing; ignore everything.
        case closing
    }

    private let core: EngineCore
    /// The HTTP/2 stream (one request) this answers, or `nil` on an HTTP/1.1 connection.
    private let stream: HTTP2StreamLink?
    private var isHTTP2Stream: Bool { self.stream != nil }
    /// The fields of the response head being emitted, when the upstream's are passed on as bytes.
    private var rawResponseFields: RawResponseFields?
    /// An HTTP/2 stream between ``startStream(on:)`` and its end.
    private var streamIsOpen = false
    private let isTLS: Bool
    /// HTTP/1.1 connections only.
    private var context: ChannelHandlerContext!
    private var eventLoop: (any EventLoop)!
    private static let allocator = ByteBufferAllocator()
    private var pool: UpstreamConnectionPool!
    private var forwarding = ForwardingContext(clientAddress: "", trusted: false, scheme: "http", localPort: "")
    /// The peer's address bytes (4 or 16), checked against ``HTTPRoute/allowedSources``;
    /// `nil` for Unix sockets (never allowed by a non-empty list).
    private var clientBytes: [UInt8]?
    private var firstRequest = true
    /// The client address of a PROXY protocol header, when the peer sent one.
    private let carried: CarriedClientAddress?
    /// The port the client connected to, when the channel's own address does not say (the
    /// fast lane's TLS connections come over a socket pair).
    private let localPort: Int?
    /// The connection's TLS facts, when its context was chosen by SNI (client certificates).
    private let tlsFacts: ConnectionTLSFactsBox?

    private var phase = Phase.idle
    private var exchange: UInt64 = 0
    /// When the current exchange's request head was read (for the latency histogram).
    private var exchangeStarted: UInt64 = 0
    // The current exchange.
    private var route: HTTPRoute?
    /// The `limit-connections` slot this exchange holds, given back when it ends.
    private var heldSlot: RateLimit?
    private var limits = HTTPLimits()
    private var requestHead: HTTPRequestHead?
    /// The fields of `requestHead` when they go as bytes (its `headers` are then empty); kept
    /// for a replay of the request.
    private var requestFieldsRaw: RawRequestFields?
    /// Request parts that arrived while connecting (an array: allocates only when used, so an
    /// idle connection does not carry it).
    private var pending: [HTTPClientRequestPart] = []
    private var upstream: UpstreamConnection?
    private var endpoints: [UpstreamEndpoint] = []
    private var upstreamTLS: UpstreamTLSContext?
    private var firstEndpoint = 0
    /// The order to try endpoints in, when not plain round robin from ``firstEndpoint``.
    private var order: [Int]?
    /// The endpoint of the current connect attempt.
    private var currentEndpoint: UpstreamEndpoint?
    /// The route's pool speaks HTTP/2 (gRPC): each exchange is a new stream.
    private var upstreamIsHTTP2 = false
    /// The endpoint counted as busy for least-requests balancing.
    private var countedEndpoint: UpstreamEndpoint?
    /// A `Set-Cookie` for the response (cookie affinity, when the client's cookie did not name
    /// the endpoint used).
    private var affinityCookie: String?
    /// The endpoint the client's affinity cookie names.
    private var stickyEndpoint: UpstreamEndpoint?
    /// The access log line of the current exchange, when the access log is on.
    private var logEntry: AccessLogEntry?
    private var accessLog: AccessLog?
    private var attempts = 0
    private var isIdempotent = false
    private var isUpgradeRequest = false
    private var requestHasBody = false
    private var requestEnded = false
    private var responseStarted = false
    private var responseIsSwitching = false
    private var upstreamReusable = false
    private var closeAfterResponse = false
    private var requestVersion = HTTPVersion.http1_1
    /// The head of a bodiless idempotent request sent on a reused upstream connection: if
    /// that connection turns out to be closed before any response byte, resend it once on
    /// a new connection (the upstream closed an idle keep-alive connection under us).
    private var replayableHead: HTTPRequestHead?
    private var forceNewConnection = false
    private var bodyReceived = 0
    private var downstreamReadPending = false
    /// Pipelined requests that arrived after the current request's end stay undecoded in
    /// ``inbound`` and are answered in order once the current exchange finishes. While any are
    /// there, reads are withheld, so at most one read's worth is buffered. (No
    /// HTTPServerPipelineHandler: it withholds `read` for every in-flight request, which costs
    /// two epoll_ctl calls per request.)
    ///
    /// Received bytes not decoded yet (HTTP/1.1): the rest of a head, or pipelined requests
    /// that wait for the current exchange; `nil` when empty, so an idle connection holds no buffer.
    private var inbound: ByteBuffer?
    private var decoder: HTTP1RequestDecoder
    private var encoder = HTTP1Encoder()
    /// An encoded response head not written yet (see ``emit(_:flush:)``).
    private var heldHead: ByteBuffer?
    /// The current request is a HEAD: its response has no body.
    private var answeringHEAD = false
    /// Plain-HTTP connections: until the first bytes show whether they are the HTTP/2
    /// connection preface (h2c with prior knowledge), this adds the HTTP/2 handlers behind
    /// this one; then this handler leaves and hands them the bytes.
    private var switchToHTTP2: ((any Channel) throws -> Void)?
    private static let http2Preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private var draining = false
    /// Inside a downstream read burst: upstream writes are flushed at `channelReadComplete`.
    private(set) var inReadBurst = false
    // One lazily moved timer per connection.
    private var deadline: NIODeadline?
    private var timer: NIOScheduledCallback?
    private var timerFiresAt: NIODeadline?
    /// The full close after a half-close (`writeLastAndClose`).
    private var linger: Scheduled<Void>?

    init(
        core: EngineCore,
        isTLS: Bool,
        stream: HTTP2StreamLink? = nil,
        carried: CarriedClientAddress? = nil,
        tlsFacts: ConnectionTLSFactsBox? = nil,
        localPort: Int? = nil,
        switchToHTTP2: ((any Channel) throws -> Void)? = nil
    ) {
        self.switchToHTTP2 = switchToHTTP2
        self.localPort = localPort
        self.core = core
        self.carried = carried
        self.tlsFacts = tlsFacts
        self.stream = stream
        let limits = core.state.limits
        self.decoder = HTTP1RequestDecoder(
            limits: HTTP1HeadLimits(
                maxRequestLineSize: limits.maxRequestLineSize,
                maxFieldSize: limits.maxHeaderFieldSize,
                maxHeadSize: limits.maxHeaderSectionSize
            )
        )
        // An HTTP/1 client's field lines go to HTTP/1.1 upstreams as bytes when nothing on
        // the way changes them.
        self.decoder.passFieldsRaw = stream == nil
        self.isTLS = isTLS
    }

    var downstreamIsWritable: Bool {
        if let stream = self.stream { return self.streamIsOpen && stream.connection.isWritable(stream.id) }
        return self.context?.channel.isWritable ?? false
    }

    /// Whether the downstream is still there to answer.
    private var isAttached: Bool { self.stream == nil ? self.context != nil : self.streamIsOpen }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.attach(to: context.channel)
        self.setDeadline(.now() + self.limits.headerReadTimeout)
    }

    /// What an HTTP/2 connection's streams share: worked out by its first stream.
    struct StreamContext {
        let pool: UpstreamConnectionPool
        let forwarding: ForwardingContext
        let clientBytes: [UInt8]?
    }

    /// An HTTP/2 stream begins: its HEADERS come next.
    func startStream(on channel: any Channel, shared: StreamContext?) -> StreamContext {
        self.streamIsOpen = true
        guard let shared else {
            self.attach(to: channel)
            return StreamContext(pool: self.pool, forwarding: self.forwarding, clientBytes: self.clientBytes)
        }
        self.eventLoop = channel.eventLoop
        self.pool = shared.pool
        self.limits = self.core.state.limits
        self.forwarding = shared.forwarding
        self.clientBytes = shared.clientBytes
        return shared
    }

    private func attach(to channel: any Channel) {
        self.eventLoop = channel.eventLoop
        self.pool = self.core.upstreamPools.pool(for: channel.eventLoop)
        let state = self.core.state
        self.limits = state.limits
        self.resolveClient(channel: channel, state: state)
    }

    /// The client: the PROXY header's source address when one was carried, else the peer.
    private func resolveClient(channel: any Channel, state: EngineState) {
        let remote = self.carried?.value ?? channel.remoteAddress
        let bytes = IPAddressRange.bytes(of: remote)
        self.clientBytes = bytes
        self.forwarding = ForwardingContext(
            clientAddress: remote?.ipAddress ?? "",
            trusted: bytes.map { bytes in state.trustedProxies.contains { $0.contains(bytes) } } ?? false,
            scheme: self.isTLS ? "https" : "http",
            localPort: (self.localPort ?? channel.localAddress?.port).map(String.init) ?? ""
        )
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.releaseSlot()
        self.cancelTimer()
        self.cancelLinger()
        if self.phase != .upgraded {
            self.dropUpstream()
        }
        // The context holds this handler strongly (`ChannelHandlerContext.handler`): keeping
        // it would retain the handler, its context and the pipeline of every closed
        // connection forever (~1.1 KB per connection).
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.downstreamGone()
        context.fireChannelInactive()
    }

    /// The HTTP/2 stream was reset by the client, or its connection closed.
    func streamClosed() {
        guard self.streamIsOpen else { return }
        self.streamIsOpen = false
        self.downstreamGone()
    }

    private func downstreamGone() {
        if self.logEntry != nil {
            // The client went away before its response ended (nginx's 499 when nothing was sent).
            if !self.responseStarted { self.logEntry?.status = 499 }
            self.writeLogEntry()
        }
        self.releaseSlot()
        self.phase = .closing
        self.cancelTimer()
        self.cancelLinger()
        self.dropUpstream()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.inReadBurst = true
        var bytes = self.unwrapInboundIn(data)
        guard self.phase != .closing else { return }
        if var held = self.inbound {
            self.inbound = nil  // unique, so appending does not copy
            held.writeBuffer(&bytes)
            self.inbound = held
        } else {
            self.inbound = bytes
        }
        if self.switchToHTTP2 != nil, self.firstRequest, self.phase == .idle || self.phase == .readingHead {
            guard self.checkPreface(context: context) else { return }
        }
        self.decodeInbound()
    }

    /// Whether to go on with HTTP/1.1: `false` while the bytes so far may still be the HTTP/2
    /// preface, or once they were and the connection switched. No HTTP/1.1 method starts with
    /// the preface's first bytes (`PRI *`), so a request is recognised within a few bytes.
    private func checkPreface(context: ChannelHandlerContext) -> Bool {
        guard let inbound = self.inbound, let switchToHTTP2 = self.switchToHTTP2 else { return true }
        let view = inbound.readableBytesView.prefix(Self.http2Preface.count)
        guard view.elementsEqual(Self.http2Preface.prefix(view.count)) else {
            self.switchToHTTP2 = nil
            return true
        }
        guard view.count == Self.http2Preface.count else { return false }  // wait for the rest
        self.switchToHTTP2 = nil
        self.phase = .upgraded
        self.cancelTimer()
        do {
            try switchToHTTP2(context.channel)
        } catch {
            self.closeNow()
            return false
        }
        self.inbound = nil
        context.fireChannelRead(self.wrapInboundOut(inbound))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        return false
    }

    /// A request part of an HTTP/2 stream.
    func receiveStreamPart(_ part: HTTPServerRequestPart) {
        self.inReadBurst = true
        guard !(self.requestEnded && self.isBusy) else { return }
        self.handle(part)
    }

    private var isBusy: Bool {
        switch self.phase {
        case .connecting, .proxying, .respondedLocally: return true
        case .idle, .readingHead, .upgraded, .closing: return false
        }
    }

    /// Decodes and handles what ``inbound`` holds, in order, until it is used up or the next
    /// request must wait for the current exchange to finish.
    private func decodeInbound() {
        guard !self.draining else { return }
        self.draining = true
        defer { self.draining = false }
        while true {
            if self.phase == .closing || self.phase == .upgraded || self.decoder.isStopped { return }
            if self.requestEnded && self.isBusy { return }  // pipelined: after this exchange
            // An empty buffer still lets the decoder report the end of a message it has read.
            var buffer = self.inbound ?? ByteBuffer()
            self.inbound = nil
            let part: HTTPServerRequestPart?
            do {
                part = try self.decoder.next(&buffer)
            } catch let error as HTTP1ParseError {
                return self.requestParseFailed(error)
            } catch {
                return self.closeNow()
            }
            if buffer.readableBytes > 0 { self.inbound = buffer }
            guard let part else { return }
            self.handle(part)
        }
    }

    private func handle(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            guard self.phase == .idle || self.phase == .readingHead else { return }
            // HTTP/1.1 heads were read by the decoder, which kept what their fields say.
            if self.isHTTP2Stream {
                self.startExchange(head, facts: RequestHeadFacts(head.headers), rawFields: nil)
            } else {
                // Taken, not shared: the proxy appends its fields to the buffer.
                let rawFields = self.decoder.rawFields
                self.decoder.rawFields = nil
                self.startExchange(head, facts: self.decoder.headFacts, rawFields: rawFields)
            }
        case .body(let buffer):
            self.requestBody(buffer)
        case .end(let trailers):
            self.requestEnd(trailers)
        }
    }

    /// The HTTP/2 connection's read burst that brought this stream parts ended.
    func streamReadComplete() {
        self.inReadBurst = false
        if self.phase == .proxying { self.upstream?.flush() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.inReadBurst = false
        switch self.phase {
        case .idle where self.inbound != nil:
            // Part of a head is here (a whole one would have started an exchange): a request
            // is arriving, and the header timeout applies.
            self.phase = .readingHead
            self.setDeadline(.now() + self.limits.headerReadTimeout)
        case .proxying:
            self.upstream?.flush()
        default:
            break
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.downstreamBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func downstreamBecameWritable() {
        self.upstream?.resumeReading()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.core.logger.debug("downstream connection failed", metadata: ["error": "\(error)"])
        self.phase = .closing
        context.close(promise: nil)
    }

    /// The request bytes are malformed. Requests before them were answered already (decoding
    /// is in order); the connection closes after the error response.
    private func requestParseFailed(_ error: HTTP1ParseError) {
        self.inbound = nil
        if self.isBusy {
            // The request being proxied is malformed (e.g. its chunked body).
            if self.responseStarted { return self.closeNow() }
            return self.respondLocally(.badRequest, "bad request: \(error)\n", forceClose: true)
        }
        self.dropUpstream()
        self.responseStarted = false
        self.requestEnded = true
        self.answeringHEAD = false
        switch error {
        case .requestLineTooLong:
            self.respondLocally(.uriTooLong, "request line too long\n", forceClose: true)
        case .headerSectionTooLarge:
            self.respondLocally(
                .init(statusCode: 431, reasonPhrase: "Request Header Fields Too Large"),
                "request header section too large\n",
                forceClose: true
            )
        case .invalidContentLength:
            self.respondLocally(.badRequest, "bad request: message framing (\(error))\n", forceClose: true)
        case .unsupportedVersion:
            self.respondLocally(.httpVersionNotSupported, "HTTP version not supported\n", forceClose: true)
        default:
            self.respondLocally(.badRequest, "bad request: \(error)\n", forceClose: true)
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.mayReadRequestBody() { context.read() }
    }

    /// Whether more request bytes may come now; if not, they are asked for (``readDownstream()``)
    /// once they may: while connecting, while the upstream is not writable, and while a
    /// pipelined request waits.
    func mayReadRequestBody() -> Bool {
        if self.inbound != nil && self.requestEnded && self.isBusy {
            // A pipelined request waits undecoded: read no more until it is answered.
            self.downstreamReadPending = true
            return false
        }
        switch self.phase {
        case .connecting:
            self.downstreamReadPending = true
            return false
        case .proxying:
            if let upstream = self.upstream, !upstream.isWritable {
                self.downstreamReadPending = true
                return false
            }
            return true
        default:
            return true
        }
    }

    /// Asks for more request bytes (a channel read; on HTTP/2, the stream window held back).
    private func readDownstream() {
        if let stream = self.stream {
            stream.connection.resumeReading(stream.id)
        } else {
            self.context?.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, self.phase == .idle || self.phase == .readingHead {
            self.phase = .closing
            context.close(promise: nil)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            self.closeAfterResponse = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Request side

    /// `rawFields`: the request's field lines as bytes (`incoming.headers` is then empty).
    private func startExchange(_ incoming: HTTPRequestHead, facts: RequestHeadFacts, rawFields: ByteBuffer?) {
        var incoming = incoming
        var rawFields = rawFields
        self.requestFieldsRaw = nil
        self.releaseSlot()
        self.exchange &+= 1
        self.exchangeStarted = NIODeadline.now().uptimeNanoseconds
        self.route = nil
        self.currentEndpoint = nil
        if self.firstRequest, self.carried?.value != nil, let context = self.context {
            // Plain HTTP: this handler was added before the PROXY header arrived.
            self.resolveClient(channel: context.channel, state: self.core.state)
        }
        self.firstRequest = false
        self.requestEnded = false
        self.responseStarted = false
        self.responseIsSwitching = false
        self.upstreamReusable = false
        self.bodyReceived = 0
        self.attempts = 0
        self.answeringHEAD = incoming.method == .HEAD
        self.requestVersion = incoming.version
        self.replayableHead = nil
        self.forceNewConnection = false
        self.closeAfterResponse = !self.isHTTP2Stream && !facts.isKeepAlive(incoming.version)
        self.requestHasBody = facts.hasBody
        self.isUpgradeRequest = facts.isUpgrade && !self.isHTTP2Stream

        // Framing hygiene (request smuggling).
        if facts.transferEncodingCount > 0 && facts.contentLength != nil {
            return self.respondLocally(
                .badRequest,
                "bad request: both Content-Length and Transfer-Encoding\n",
                forceClose: true
            )
        }
        if facts.transferEncodingCount > 0 && !(facts.transferEncodingCount == 1 && facts.transferEncodingIsChunked) {
            return self.respondLocally(
                .badRequest,
                "bad request: Transfer-Encoding other than chunked\n",
                forceClose: true
            )
        }
        if facts.conflictingContentLength {
            return self.respondLocally(.badRequest, "bad request: conflicting Content-Length\n", forceClose: true)
        }
        if !self.isHTTP2Stream && (facts.hostCount > 1 || (facts.hostCount == 0 && incoming.version == .http1_1)) {
            // RFC 9112 3.2: routing reads one Host, an upstream might read another.
            let problem = facts.hostCount > 1 ? "more than one Host field" : "HTTP/1.1 request without Host"
            return self.respondLocally(.badRequest, "bad request: \(problem)\n", forceClose: true)
        }
        if incoming.method == .CONNECT {
            // A tunnel to an address the client names is a forward proxy's job, not an
            // ingress's (nginx refuses it too); the bytes after it are not HTTP.
            return self.respondLocally(.methodNotAllowed, "405 method not allowed: CONNECT\n", forceClose: true)
        }
        if incoming.method == .TRACE && facts.hasBody {
            // No content in TRACE (RFC 9110 section 9.3.8): the upstream would not read it as
            // a body.
            return self.respondLocally(.badRequest, "bad request: TRACE with content\n", forceClose: true)
        }

        let state = self.core.state
        self.limits = state.limits
        self.accessLog = state.accessLog
        if state.accessLog != nil {
            self.logEntry = AccessLogEntry(
                starting: incoming,
                host: facts.host,
                client: self.forwarding.clientAddress,
                http2: self.isHTTP2Stream
            )
        }
        guard let route = state.routes.lookup(host: facts.host.map { Substring($0) }, path: Substring(incoming.uri))
        else {
            return self.respondLocally(
                .notFound,
                "no route for host \"\(facts.host ?? "")\" path \"\(incoming.uri)\"\n"
            )
        }
        self.route = route
        if !route.allowedSources.isEmpty && !self.clientIsAllowed(route.allowedSources) {
            // Keeps the connection when the request has no body (or it was fully read).
            return self.respondLocally(
                .forbidden,
                "403 forbidden: client \(self.forwarding.clientAddress) is not in the allowed source ranges of this route\n"
            )
        }
        var clientVerify: String?
        if let authority = route.clientCertificate {
            guard let tls = self.tlsFacts?.value, tls.authority == authority else {
                // SNI chose another context (or there is no TLS), so no certificate was asked for.
                let host = Self.hostWithoutPort(facts.host ?? "")
                return self.isTLS
                    ? self.respondLocally(
                        .misdirectedRequest,
                        "421 misdirected request: host \"\(host)\" needs a client certificate; use it as the TLS server name (SNI)\n"
                    )
                    : self.respondLocally(
                        .forbidden,
                        "403 forbidden: host \"\(host)\" needs a client certificate over HTTPS\n"
                    )
            }
            clientVerify = tls.handler?.peerCertificate != nil ? "SUCCESS" : "NONE"
        }
        if let rateLimit = route.rateLimit, let address = self.clientBytes {
            switch self.core.rateLimiter.admit(rateLimit, address: address) {
            case .allowed:
                if rateLimit.connections != nil { self.heldSlot = rateLimit }
            case .tooManyRequests(let limit):
                return self.respondLocally(
                    .tooManyRequests,
                    "429 too many requests: client \(self.forwarding.clientAddress) is over the limit of \(limit)\n"
                )
            case .tooManyConnections:
                return self.respondLocally(
                    .tooManyRequests,
                    "429 too many requests: client \(self.forwarding.clientAddress) has \(rateLimit.connections ?? 0) requests in progress already\n"
                )
            }
        }
        if let appRoot = route.appRoot, Self.pathOnly(incoming.uri) == "/" {
            let scheme = self.isTLS ? "https" : "http"
            let target = "\(scheme)://\(facts.host ?? "")\(appRoot)"
            return self.respondLocally(.found, "redirecting to \(target)\n", location: target)
        }
        if let target = route.permanentRedirect {
            return self.respondLocally(
                HTTPResponseStatus(statusCode: route.permanentRedirectCode),
                "redirecting to \(target)\n",
                location: target
            )
        }
        if route.sslRedirect && !self.isTLS {
            let host = Self.hostWithoutPort(facts.host ?? "")
            let target = "https://\(host)\(incoming.uri)"
            return self.respondLocally(.permanentRedirect, "redirecting to \(target)\n", location: target)
        }
        if let limit = route.maxBodySize, let length = facts.contentLength, length > limit {
            return self.respondLocally(
                .payloadTooLarge,
                "request body of \(length) bytes is over the limit of \(limit) bytes\n",
                forceClose: true
            )
        }
        guard let upstreamPool = state.pools[route.pool], !upstreamPool.endpoints.isEmpty else {
            return self.respondLocally(
                .serviceUnavailable,
                "no endpoints available for service \"\(route.service)\"\n"
            )
        }
        if facts.expectsContinue {
            self.emit(.head(HTTPResponseHead(version: incoming.version, status: .continue)), flush: true)
        }
        if let raw = rawFields,
            route.affinity != nil || route.forwardAuth != nil || upstreamPool.http2 || incoming.method == .TRACE
        {
            // A policy reads or changes fields, an HTTP/2 upstream needs them as a block, or a
            // TRACE loses its Content-Length: strings after all.
            incoming.headers = RawRequestFields.headers(of: raw)
            rawFields = nil
        }

        var head = incoming
        if var raw = rawFields {
            // Bytes: the client's lines (HTTP/1.1, nothing hop-by-hop, no X-Forwarded-*,
            // Expect or SSL-Client-Verify of its own), then the proxy's.
            self.forwarding.append(to: &raw, host: facts.host)
            if let clientVerify {
                raw.writeStaticString("ssl-client-verify: ")
                raw.writeString(clientVerify)
                raw.writeStaticString("\r\n")
            }
            self.requestFieldsRaw = RawRequestFields(bytes: raw, hasLength: facts.contentLength != nil)
        } else {
            if !facts.hopByHop.isEmpty {
                head.headers.removeHopByHop(
                    present: facts.hopByHop,
                    connection: facts.connection,
                    keepUpgrade: self.isUpgradeRequest
                )
            }
            if facts.expectsContinue {
                head.headers.remove(name: "expect")
            }
            if upstreamPool.http2,
                incoming.headers[canonicalForm: "te"].contains(where: { $0.lowercased() == "trailers" })
            {
                // The one TE value HTTP/2 allows, and gRPC servers require.
                head.headers.replaceOrAdd(name: "te", value: "trailers")
            }
            self.forwarding.apply(to: &head.headers, facts: facts)
            if let clientVerify {
                // Ours, never the client's.
                head.headers.replaceOrAdd(name: "ssl-client-verify", value: clientVerify)
            }
            if head.version != .http1_1 {
                head.version = .http1_1
                if !facts.hasBody { head.headers.remove(name: "transfer-encoding") }
            }
        }
        if let rewrite = route.rewrite, let uri = rewrite.apply(to: head.uri) {
            head.uri = uri
        }
        self.requestHead = head
        switch head.method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: self.isIdempotent = true
        default: self.isIdempotent = false
        }
        self.endpoints = upstreamPool.endpoints
        self.upstreamTLS = state.upstreamTLS[route.pool]
        self.upstreamIsHTTP2 = upstreamPool.http2
        self.firstEndpoint = self.pool.nextIndex(pool: route.pool, count: upstreamPool.endpoints.count)
        self.affinityCookie = nil
        self.stickyEndpoint = nil
        var preferred: Int?
        if let affinity = route.affinity, let value = affinity.value(in: incoming.headers) {
            preferred = upstreamPool.endpoints.firstIndex { CookieAffinity.value(for: $0) == value }
            self.stickyEndpoint = preferred.map { upstreamPool.endpoints[$0] }
        }
        self.order = self.pool.health.order(
            upstreamPool.endpoints,
            start: self.firstEndpoint,
            balancing: route.loadBalancing,
            preferred: preferred,
            now: .now(),
            down: upstreamPool.healthCheck == nil ? [] : self.core.healthChecker.down
        )
        self.phase = .connecting
        self.setDeadline(nil)
        if let auth = route.forwardAuth {
            return self.authorize(auth, original: incoming, host: facts.host ?? "", state: state)
        }
        self.connectUpstream()
    }

    /// Asks the auth service first (ingress-nginx `auth-url`); the request waits in the
    /// connecting phase (its body queued, reads withheld) and goes upstream on a 2xx.
    private func authorize(_ auth: ForwardAuth, original: HTTPRequestHead, host: String, state: EngineState) {
        guard let route = self.route else { return }
        let exchange = self.exchange
        let scheme = self.isTLS ? "https" : "http"
        let originalURL = "\(scheme)://\(host)\(original.uri)"
        ForwardAuthClient.request(
            auth,
            original: original,
            originalURL: originalURL,
            clientAddress: self.forwarding.clientAddress,
            scheme: scheme,
            host: host,
            timeout: route.connectTimeout + route.readTimeout,
            tlsContext: auth.tls ? state.forwardAuthTLS : nil,
            eventLoop: self.eventLoop
        ).assumeIsolated().whenComplete { result in
            // The client may have gone, or this exchange ended, meanwhile.
            guard self.exchange == exchange, self.phase == .connecting, self.isAttached else { return }
            switch result {
            case .success(let answer) where answer.status.code >= 200 && answer.status.code < 300:
                for name in auth.responseHeaders {
                    let values = answer.headers[name]
                    guard !values.isEmpty else { continue }
                    self.requestHead?.headers.remove(name: name)
                    for value in values { self.requestHead?.headers.add(name: name, value: value) }
                }
                self.connectUpstream()
            case .success(let answer) where answer.status == .unauthorized:
                if let signin = auth.signin {
                    let separator = signin.contains("?") ? "&" : "?"
                    let target = signin + separator + "rd=" + Self.percentEncoded(originalURL)
                    return self.respondLocally(.found, "authentication required: \(target)\n", location: target)
                }
                self.respondLocally(
                    .unauthorized,
                    "401 unauthorized (by the auth service)\n",
                    extraHeaders: answer.headers["www-authenticate"].map { ("www-authenticate", $0) }
                )
            case .success(let answer) where answer.status == .forbidden:
                self.respondLocally(.forbidden, "403 forbidden (by the auth service)\n")
            case .success(let answer):
                self.respondLocally(
                    .internalServerError,
                    "500: the auth service answered \(answer.status.code), not 2xx, 401 or 403\n"
                )
            case .failure(let error):
                self.pool.metrics.countUpstreamError(service: route.service, reason: "auth")
                self.respondLocally(.internalServerError, "500: the auth service could not be asked (\(error))\n")
            }
        }
    }

    /// A URL as a query parameter value (RFC 3986 unreserved characters kept).
    private static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                result += "%"
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xf)]))
            }
        }
        return result
    }

    /// Whether the client may use a route limited to `ranges`. The client is the peer address
    /// (as in `X-Real-IP` from an untrusted peer); `X-Forwarded-For` from trusted proxies is
    /// not consulted.
    private func clientIsAllowed(_ ranges: [IPAddressRange]) -> Bool {
        guard let bytes = self.clientBytes else { return false }
        return ranges.contains { $0.contains(bytes) }
    }

    private func requestBody(_ buffer: ByteBuffer) {
        switch self.phase {
        case .connecting, .proxying:
            self.bodyReceived += buffer.readableBytes
            if let limit = self.route?.maxBodySize, self.bodyReceived > limit {
                if self.responseStarted {
                    return self.closeNow()
                }
                self.dropUpstream()
                return self.respondLocally(
                    .payloadTooLarge,
                    "request body is over the limit of \(limit) bytes\n",
                    forceClose: true
                )
            }
            if self.phase == .connecting {
                self.pending.append(.body(.byteBuffer(buffer)))
            } else {
                self.upstream?.write(.body(.byteBuffer(buffer)))
                self.refreshUpstreamDeadline()
            }
        default:
            break
        }
    }

    private func requestEnd(_ trailers: HTTPHeaders?) {
        self.requestEnded = true
        switch self.phase {
        case .connecting:
            self.pending.append(.end(trailers))
        case .proxying:
            self.upstream?.write(.end(trailers))
            if !self.inReadBurst { self.upstream?.flush() }
            // Sent: from now on the read timeout applies.
            if !self.responseStarted { self.refreshUpstreamDeadline() }
        case .respondedLocally:
            self.exchangeFinished()
        default:
            break
        }
    }

    // MARK: Upstream

    private func connectUpstream() {
        guard let route = self.route else { return }
        let index =
            self.order.map { $0[self.attempts % $0.count] } ?? (self.firstEndpoint + self.attempts)
            % self.endpoints.count
        let endpoint = self.endpoints[index]
        self.currentEndpoint = endpoint
        let key = UpstreamKey(endpoint: endpoint, tls: self.upstreamTLS.map { ObjectIdentifier($0.context) })
        self.attempts += 1
        if self.upstreamIsHTTP2 {
            return self.openStream(key, route: route, endpoint: endpoint)
        }
        if !self.forceNewConnection, let connection = self.pool.takeIdle(key) {
            if self.isIdempotent && !self.requestHasBody {
                self.replayableHead = self.requestHead
            }
            return self.attach(connection)
        }
        self.replayableHead = nil
        let exchange = self.exchange
        let limits = self.limits
        let connecting = self.pool.connect(key, tls: self.upstreamTLS, timeout: route.connectTimeout)
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let connection):
                self.pool.health.connectSucceeded(endpoint)
                if self.exchange == exchange && self.phase == .connecting {
                    self.attach(connection)
                } else {
                    self.pool.release(connection, limits: limits)
                }
            case .failure(let error):
                self.connectFailed(endpoint, error: error, route: route, exchange: exchange, detail: "")
            }
        }
    }

    /// A connection (or HTTP/2 stream) to `endpoint` failed: the endpoint is ejected for a
    /// while; an idempotent request tries the next endpoint (bounded), anything else gets 502.
    private func connectFailed(
        _ endpoint: UpstreamEndpoint,
        error: any Error,
        route: HTTPRoute,
        exchange: UInt64,
        detail: String
    ) {
        self.pool.health.connectFailed(endpoint, now: .now(), base: self.limits.ejectionTime)
        guard self.exchange == exchange && self.phase == .connecting else { return }
        let bound = min(self.limits.maxConnectAttempts, self.endpoints.count)
        if self.isIdempotent && self.attempts < bound {
            return self.connectUpstream()
        }
        self.core.logger.debug("upstream connect failed", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
        self.pool.metrics.countUpstreamError(service: route.service, reason: "connect")
        self.respondLocally(
            .badGateway,
            LocalAnswer.connectFailed(service: route.service, endpoint: endpoint, detail: detail),
            forceClose: !self.requestEnded
        )
    }

    /// A stream on the endpoint's HTTP/2 connection; failures retry like connect failures.
    private func openStream(_ key: UpstreamKey, route: HTTPRoute, endpoint: UpstreamEndpoint) {
        self.replayableHead = nil
        let exchange = self.exchange
        self.pool.openStream(key, tls: self.upstreamTLS, timeout: route.connectTimeout).assumeIsolated().whenComplete {
            result in
            switch result {
            case .success(let stream):
                self.pool.health.connectSucceeded(endpoint)
                if self.exchange == exchange && self.phase == .connecting {
                    self.attach(stream)
                } else {
                    stream.close()
                }
            case .failure(let error):
                self.connectFailed(
                    endpoint,
                    error: error,
                    route: route,
                    exchange: exchange,
                    detail: ", HTTP/2: \(error)"
                )
            }
        }
    }

    private func attach(_ connection: UpstreamConnection) {
        guard let head = self.requestHead else { return }
        self.requestHead = nil
        self.upstream = connection
        connection.owner = self
        self.phase = .proxying
        if let endpoint = self.currentEndpoint, let route = self.route {
            if route.loadBalancing == .leastRequests {
                self.pool.health.started(endpoint)
                self.countedEndpoint = endpoint
            }
            if let affinity = route.affinity, self.stickyEndpoint != endpoint {
                self.affinityCookie = affinity.setCookie(for: endpoint)
            }
        }
        if self.downstreamIsWritable { connection.resumeReading() }
        // An HTTP/1.1 client takes the upstream's fields as they are.
        connection.passResponseFieldsRaw = !self.isHTTP2Stream && self.requestVersion == .http1_1
        connection.writeHead(head, rawFields: self.requestFieldsRaw)
        for part in self.pending {
            connection.write(part)
        }
        self.pending.removeAll()
        if !self.inReadBurst { connection.flush() }
        self.refreshUpstreamDeadline()
        if self.downstreamReadPending && connection.isWritable {
            self.downstreamReadPending = false
            self.readDownstream()
        }
    }

    func upstreamBecameWritable() {
        if self.downstreamReadPending {
            self.downstreamReadPending = false
            self.readDownstream()
        }
    }

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard self.phase == .proxying else { return }
        self.refreshUpstreamDeadline()
        switch part {
        case .head(var head):
            if head.status.code >= 200 || head.status == .switchingProtocols {
                let service = self.route?.service ?? ""
                self.pool.metrics.countRequest(self.route, status: head.status)
                self.pool.metrics.recordLatency(
                    service: service,
                    nanoseconds: NIODeadline.now().uptimeNanoseconds &- self.exchangeStarted
                )
            }
            self.responseStarted = true
            self.replayableHead = nil
            self.requestFieldsRaw = nil
            let upstreamVersion = head.version
            // An HTTP/2 upstream's head says 2.0; the downstream codec writes its own version.
            if head.version.major == 2 { head.version = .http1_1 }
            if head.status == .switchingProtocols && self.isUpgradeRequest {
                self.responseIsSwitching = true
                self.upstreamReusable = false
                _ = head.headers.removeHopByHopFromResponse(keepUpgrade: true, version: upstreamVersion)
            } else {
                if self.isUpgradeRequest { self.closeAfterResponse = true }
                let keepAlive =
                    self.upstream?.removedHopByHop?.isKeepAlive(upstreamVersion)
                    ?? head.headers.removeHopByHopFromResponse(keepUpgrade: false, version: upstreamVersion)
                self.upstreamReusable = keepAlive && !self.upstreamIsHTTP2
                if self.requestVersion.major == 1 && self.requestVersion.minor == 0 {
                    // An HTTP/1.0 client cannot read chunked bodies: delimit by close instead.
                    head.version = .http1_0
                    if !head.headers.contains(name: "content-length") {
                        head.headers.remove(name: "transfer-encoding")
                        self.closeAfterResponse = true
                    } else if !self.closeAfterResponse {
                        head.headers.add(name: "connection", value: "keep-alive")
                    }
                }
                if self.closeAfterResponse && !self.isHTTP2Stream {
                    head.headers.add(name: "connection", value: "close")
                }
            }
            if let cookie = self.affinityCookie {
                head.headers.add(name: "set-cookie", value: cookie)
            }
            self.logEntry?.status = Int(head.status.code)
            if !self.isHTTP2Stream { self.rawResponseFields = self.upstream?.rawResponseFields }
            self.emit(.head(head))
        case .body(let buffer):
            self.logEntry?.bytesSent += buffer.readableBytes
            self.emit(.body(.byteBuffer(buffer)))
        case .end(let trailers):
            if self.responseIsSwitching {
                return self.installTunnel()
            }
            if !self.requestEnded {
                // Answered before the whole request arrived: neither side can be reused.
                self.upstreamReusable = false
                self.closeAfterResponse = true
            }
            self.releaseUpstream()
            self.writeResponseEnd(trailers)
        }
    }

    func upstreamReadComplete() {
        self.flushDownstream()
    }

    func upstreamClosed(failure: (any Error)?) {
        self.upstream = nil
        guard self.phase == .proxying else { return }
        if !self.responseStarted, let head = self.replayableHead {
            self.replayableHead = nil
            self.requestHead = head
            self.pending.removeAll(keepingCapacity: false)
            if self.requestEnded { self.pending.append(.end(nil)) }
            self.forceNewConnection = true
            self.phase = .connecting
            self.attempts = max(0, self.attempts - 1)
            return self.connectUpstream()
        }
        let service = self.route?.service ?? ""
        let invalid = failure is HTTP1ParseError
        self.pool.metrics.countUpstreamError(service: service, reason: invalid ? "invalid_response" : "closed")
        if self.responseStarted {
            self.closeNow()
        } else if invalid, let failure {
            self.respondLocally(
                .badGateway,
                LocalAnswer.invalidResponse(service: service, failure: failure),
                forceClose: true
            )
        } else {
            let reason = failure.map { " (\($0))" } ?? ""
            self.respondLocally(
                .badGateway,
                LocalAnswer.upstreamClosed(service: service, reason: reason),
                forceClose: true
            )
        }
    }

    private func releaseUpstream() {
        self.uncountEndpoint()
        guard let upstream = self.upstream else { return }
        self.upstream = nil
        if self.upstreamReusable {
            self.pool.release(upstream, limits: self.limits)
        } else {
            upstream.owner = nil
            upstream.close()
        }
    }

    /// Writes the exchange's access log line, once.
    private func writeLogEntry() {
        guard var entry = self.logEntry else { return }
        self.logEntry = nil
        entry.service = self.route?.service ?? ""
        entry.upstream = self.currentEndpoint?.description ?? ""
        self.accessLog?.record(entry)
    }

    /// Ends the least-requests count of the exchange's endpoint.
    private func uncountEndpoint() {
        guard let endpoint = self.countedEndpoint else { return }
        self.countedEndpoint = nil
        self.pool.health.finished(endpoint)
    }

    private func dropUpstream() {
        self.uncountEndpoint()
        guard let upstream = self.upstream else { return }
        self.upstream = nil
        upstream.owner = nil
        upstream.close()
    }

    private func installTunnel() {
        self.writeLogEntry()
        self.uncountEndpoint()
        guard let upstream = self.upstream, let upstreamChannel = upstream.channel else { return self.closeNow() }
        self.phase = .upgraded
        self.upstream = nil
        upstream.owner = nil
        // Removing this handler clears `self.context`.
        let context = self.context!
        self.flushDownstream()
        let (downstreamSide, upstreamSide) = TunnelHandler.pair()
        do {
            let downstream = context.pipeline.syncOperations
            try downstream.addHandler(downstreamSide, position: .after(self))
            try upstream.becomeTunnel(upstreamSide)
            // Bytes the client sent after its upgrade request belong to the new protocol.
            if let leftover = self.inbound {
                self.inbound = nil
                context.fireChannelRead(self.wrapInboundOut(leftover))
                context.fireChannelReadComplete()
            }
            _ = downstream.removeHandler(self)
            context.channel.read()
            upstreamChannel.read()
        } catch {
            upstreamChannel.close(promise: nil)
            context.close(promise: nil)
        }
    }

    // MARK: Responses

    private func writeResponseEnd(_ trailers: HTTPHeaders?) {
        self.writeLogEntry()
        self.route = nil
        if self.closeAfterResponse {
            self.writeLastAndClose(.end(trailers))
        } else {
            // The end goes out before the next pipelined request (decoded by enterIdle) is answered.
            self.emit(.end(trailers), flush: true)
            self.enterIdle()
        }
    }

    /// Writes one response part: encoded on an HTTP/1.1 connection, as it is on an HTTP/2 stream.
    private func emit(_ part: HTTPServerResponsePart, flush: Bool = false) {
        if let stream = self.stream {
            stream.connection.write(part, on: stream.id)
        } else if let context = self.context {
            switch part {
            case .head(let head):
                self.writeHeldHead(context)
                var buffer = context.channel.allocator.buffer(capacity: 512)
                if let raw = self.rawResponseFields {
                    self.rawResponseFields = nil
                    self.encoder.writeResponseHead(head, answeringHEAD: self.answeringHEAD, raw: raw, into: &buffer)
                } else {
                    self.encoder.writeResponseHead(head, answeringHEAD: self.answeringHEAD, into: &buffer)
                }
                // Held until the body's first part (or a flush): a small body then goes out in
                // the same buffer, one write and, over TLS, one record instead of two.
                self.heldHead = buffer
            case .body(.byteBuffer(let body)):
                guard self.encoder.writesBody else { break }
                let prefix = self.encoder.chunkPrefix(for: body.readableBytes, allocator: context.channel.allocator)
                if var head = self.heldHead, body.readableBytes <= Self.coalescedBodyLimit {
                    self.heldHead = nil
                    var body = body
                    head.reserveCapacity(minimumWritableBytes: (prefix?.readableBytes ?? 0) + body.readableBytes)
                    if var prefix { head.writeBuffer(&prefix) }
                    head.writeBuffer(&body)
                    context.write(self.wrapOutboundOut(head), promise: nil)
                    break
                }
                self.writeHeldHead(context)
                if let prefix { context.write(self.wrapOutboundOut(prefix), promise: nil) }
                context.write(self.wrapOutboundOut(body), promise: nil)
            case .body(.fileRegion):
                preconditionFailure("the proxy never writes file regions")
            case .end(let trailers):
                self.writeHeldHead(context)
                if let end = self.encoder.end(trailers: trailers, allocator: context.channel.allocator) {
                    context.write(self.wrapOutboundOut(end), promise: nil)
                }
            }
        }
        if flush { self.flushDownstream() }
    }

    /// Bodies up to this size are copied behind their head (one write); larger ones are
    /// written as they are, after it.
    private static let coalescedBodyLimit = 16 * 1024

    /// Writes the response head held back by ``emit(_:flush:)``, if any.
    private func writeHeldHead(_ context: ChannelHandlerContext) {
        guard let head = self.heldHead else { return }
        self.heldHead = nil
        context.write(self.wrapOutboundOut(head), promise: nil)
    }

    /// Flushes the downstream connection, the held head included.
    private func flushDownstream() {
        if let stream = self.stream {
            stream.connection.flush(stream.id)
            return
        }
        guard let context = self.context else { return }
        self.writeHeldHead(context)
        context.flush()
    }

    private func exchangeFinished() {
        if self.closeAfterResponse && !self.isHTTP2Stream {
            self.phase = .closing
            self.flushDownstream()
            self.context.close(promise: nil)
        } else {
            self.enterIdle()
        }
    }

    private func respondLocally(
        _ status: HTTPResponseStatus,
        _ message: String,
        location: String? = nil,
        forceClose: Bool = false,
        extraHeaders: [(String, String)] = []
    ) {
        self.dropUpstream()
        self.pending.removeAll()
        self.requestHead = nil
        self.requestFieldsRaw = nil
        self.responseStarted = true
        self.pool.metrics.countRequest(self.route, status: status)
        if self.logEntry != nil {
            self.logEntry?.status = Int(status.code)
            self.logEntry?.bytesSent = message.utf8.count
            self.writeLogEntry()
        }
        if forceClose || (!self.requestEnded && self.requestHasBody) {
            self.closeAfterResponse = true
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(4)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(message.utf8.count))
        if let location { headers.add(name: "location", value: location) }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        if self.closeAfterResponse && !self.isHTTP2Stream { headers.add(name: "connection", value: "close") }
        self.emit(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        if !self.answeringHEAD {
            // (The HTTP/1 encoder would drop it too; an HTTP/2 stream would send it.)
            self.emit(.body(.byteBuffer(Self.allocator.buffer(string: message))))
        }
        if self.closeAfterResponse {
            self.writeLastAndClose(.end(nil))
        } else if self.requestEnded {
            self.emit(.end(nil), flush: true)
            self.enterIdle()
        } else {
            self.phase = .respondedLocally
            self.emit(.end(nil), flush: true)
        }
    }

    /// Writes the last response part, then half-closes the output so the client reads the
    /// whole response even while it is still sending, and closes fully when the client goes
    /// away or after a short linger.
    /// The exchange is over: wait for the next request (HTTP/1.1) or let the stream end (HTTP/2).
    /// Gives back the `limit-connections` slot of the exchange that ended.
    private func releaseSlot() {
        guard let limit = self.heldSlot else { return }
        self.heldSlot = nil
        if let address = self.clientBytes { self.core.rateLimiter.release(limit, address: address) }
    }

    private func enterIdle() {
        self.releaseSlot()
        if let stream = self.stream {
            self.endStream(stream, reset: nil)
        } else {
            self.phase = .idle
            self.setDeadline(.now() + self.limits.idleTimeout)
            if self.inbound != nil {
                self.decodeInbound()
            }
            if self.phase == .idle && self.downstreamReadPending {
                // A read withheld while connecting (the exchange ended without an upstream:
                // an auth refusal, a 502) is issued now, or the next request is never read.
                self.downstreamReadPending = false
                self.readDownstream()
            }
        }
    }

    /// This HTTP/2 stream's exchange is over; `reset` when it did not end normally.
    private func endStream(_ stream: HTTP2StreamLink, reset: HTTP2ErrorCode?) {
        self.phase = .closing
        self.deadline = nil
        self.cancelTimer()
        guard self.streamIsOpen else { return }
        self.streamIsOpen = false
        // What channelInactive does for a connection (streamClosed does nothing from now on).
        self.releaseSlot()
        if self.logEntry != nil { self.writeLogEntry() }
        stream.connection.finish(stream.id, reset: reset)
    }

    private func writeLastAndClose(_ part: HTTPServerResponsePart) {
        self.phase = .closing
        self.dropUpstream()
        if let stream = self.stream {
            // Ends the stream; the connection drops what the client still sends, then resets.
            self.emit(part)
            self.endStream(stream, reset: nil)
            return
        }
        let context = self.context!
        self.emit(part)
        self.writeHeldHead(context)
        // An empty write completes once everything before it was flushed.
        context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated()
            .whenComplete { _ in
                let halfClosed = context.eventLoop.makePromise(of: Void.self)
                context.close(mode: .output, promise: halfClosed)
                halfClosed.futureResult.assumeIsolated().whenComplete { result in
                    switch result {
                    case .success where self.context != nil:
                        // Cancelled when the channel closes first (the usual case): the task
                        // would otherwise keep the closed connection's pipeline alive for 2 s.
                        self.linger = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
                            context.close(promise: nil)
                        }
                    case .success, .failure:
                        context.close(promise: nil)
                    }
                }
            }
    }

    private func closeNow() {
        self.phase = .closing
        self.dropUpstream()
        if let stream = self.stream {
            self.endStream(stream, reset: .internalError)
        } else {
            self.context?.close(promise: nil)
        }
    }

    /// The request target without its query string.
    private static func pathOnly(_ uri: String) -> Substring {
        uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? uri[...]
    }

    private static func hostWithoutPort(_ host: String) -> Substring {
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            return host[...end]
        }
        if let colon = host.lastIndex(of: ":") {
            return host[..<colon]
        }
        return Substring(host)
    }

    // MARK: Timer

    /// While the request is still being sent, the next write must happen within the send
    /// timeout (`proxy-send-timeout`); then each read within the read timeout.
    private func refreshUpstreamDeadline() {
        guard let route = self.route else { return }
        let sending = !self.requestEnded && !self.responseStarted
        self.setDeadline(.now() + (sending ? route.sendTimeout : route.readTimeout))
    }

    private func setDeadline(_ deadline: NIODeadline?) {
        self.deadline = deadline
        // HTTP/2 streams: the connection checks the deadline every second (checkDeadline).
        guard let deadline, self.stream == nil else { return }
        if let firesAt = self.timerFiresAt, firesAt <= deadline { return }
        self.cancelTimer()
        guard self.isAttached else { return }
        self.timerFiresAt = deadline
        self.timer = try? self.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    private func cancelLinger() {
        if let linger = self.linger {
            self.linger = nil
            linger.cancel()
        }
    }

    private func cancelTimer() {
        if let timer = self.timer {
            self.timer = nil
            self.timerFiresAt = nil
            timer.cancel()
        }
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        self.timer = nil
        self.timerFiresAt = nil
        guard let deadline = self.deadline, self.isAttached else { return }
        if deadline > .now() {
            return self.setDeadline(deadline)
        }
        self.deadlineReached()
    }

    /// An HTTP/2 stream's deadline, checked by its connection every second.
    func checkDeadline(_ now: NIODeadline) {
        guard let deadline = self.deadline, deadline <= now, self.isAttached else { return }
        self.deadlineReached()
    }

    private func deadlineReached() {
        self.deadline = nil
        switch self.phase {
        case .idle:
            // Idle keep-alive connection (or nothing at all since accept): close quietly.
            self.closeNow()
        case .readingHead:
            self.phase = .closing
            self.pool.metrics.countRequest(nil, status: .requestTimeout)
            let message = LocalAnswer.headerTimeout
            var buffer = self.context.channel.allocator.buffer(capacity: 128)
            buffer.writeString(
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    + "content-length: \(message.utf8.count)\r\nconnection: close\r\n\r\n\(message)"
            )
            let context = self.context!
            context.writeAndFlush(self.wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .proxying where !self.responseStarted:
            self.pool.metrics.countUpstreamError(service: self.route?.service ?? "", reason: "timeout")
            self.dropUpstream()
            let which = self.requestEnded ? "proxy-read-timeout" : "proxy-send-timeout"
            self.respondLocally(
                .gatewayTimeout,
                LocalAnswer.timedOut(service: self.route?.service ?? "", which: which),
                forceClose: !self.requestEnded
            )
        case .proxying, .connecting:
            self.closeNow()
        case .respondedLocally, .upgraded, .closing:
            break
        }
    }
}
