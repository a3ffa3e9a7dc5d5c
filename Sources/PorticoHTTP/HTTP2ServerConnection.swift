import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// A stream of an ``HTTP2ServerConnection``, as its ``ProxyHandler`` knows it.
struct HTTP2StreamLink {
    let connection: HTTP2ServerConnection
    let id: HTTP2StreamID
}

/// The HTTP/2 side of a client connection, at the frame level, behind `NIOHTTP2Handler`
/// (which keeps the protocol state, HPACK, flow-control accounting and the DoS limits).
///
/// Each stream's request goes to a ``ProxyHandler`` driven by method calls: no child channel,
/// pipeline or codec per stream, which were most of the cost of an HTTP/2 request.
/// What the child channels did and this handler now does itself:
/// - request HEADERS/DATA to request parts, response parts to HEADERS/DATA;
/// - inbound flow control: the connection window is given back as DATA arrives, a stream's
///   window only while its proxy takes the bytes (it withholds them while connecting or while
///   the upstream is not writable), so each stream buffers at most one window;
/// - outbound backpressure: a stream is writable while fewer than ``highWatermark`` of its
///   DATA bytes wait in the HTTP/2 handler (flow control) and the connection is writable;
///   the HTTP/2 handler reports each frame it writes (``wroteFrame(_:)``);
/// - graceful shutdown (GOAWAY, then close once the open streams ended) and an idle timeout.
final class HTTP2ServerConnection: ChannelDuplexHandler, NIOHTTP2FrameDelegate, NIOScheduledCallbackHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// A class, not a struct: a large struct in a dictionary is changed through the
    /// dictionary's modify accessor, whose frame was allocated per access (~14 allocations
    /// per request).
    private final class Stream {
        let proxy: ProxyHandler
        /// DATA bytes handed to the HTTP/2 handler and not written by it yet.
        var queued = 0
        /// The proxy saw the stream unwritable: told when it drains.
        var paused = false
        /// Request bytes received and not given back as stream window yet.
        var unacknowledged = 0
        /// The proxy withholds request bytes: the window waits for ``resumeReading(_:)``.
        var readHeld = false
        var requestEnded = false
        /// Request body bytes still to come by the request's `content-length`: DATA beyond
        /// it, or an end before it, makes the request malformed (RFC 9113 8.1.1).
        var remainingLength: Int?
        /// A request head not handed to the proxy yet (see ``openStream``).
        var pendingHead: HTTPRequestHead?
        /// A response head not written yet: it leaves with END_STREAM when nothing follows.
        var heldHead: HPACKHeaders?
        /// The latest response DATA, held so that the end of the response rides on it.
        var heldData: ByteBuffer?
        var state = State.active
        /// The response's END_STREAM left the HTTP/2 handler (flow control let it go).
        var endWritten = false
        /// Request bytes dropped while ``State/discarding``.
        var discarded = 0

        enum State {
            /// The exchange is in progress.
            case active
            /// The response ended and so did the request; the stream waits for its END_STREAM
            /// to leave (the client's window) and NIO's StreamClosedEvent.
            case finished
            /// The response ended before the request: what still comes is read and dropped
            /// until `until`, then the stream is reset.
            case discarding(until: NIODeadline)
        }

        var isDiscarding: Bool {
            if case .discarding = self.state { return true }
            return false
        }

        init(proxy: ProxyHandler, requestEnded: Bool, remainingLength: Int?) {
            self.proxy = proxy
            self.requestEnded = requestEnded
            self.remainingLength = remainingLength
        }
    }

    private static let highWatermark = 64 * 1024
    private static let lowWatermark = 32 * 1024
    /// The connection's and each stream's receive window (the protocol's initial size).
    private static let targetWindow = 65535
    /// Window given back once this much was received (half the window).
    private static let windowUpdateThreshold = 32 * 1024
    /// Request bytes read and dropped after the response ended, before a reset; and for how
    /// long at most.
    private static let discardLimit = 64 * 1024
    private static let discardTime = TimeAmount.seconds(2)

    private let core: EngineCore
    private let isTLS: Bool
    private let carried: CarriedClientAddress?
    private let tlsFacts: ConnectionTLSFactsBox?
    private let idleTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: Stream] = [:]
    /// Streams in ``Stream/State/active``: while there are none, the idle timeout runs.
    private var activeStreams = 0
    /// Streams the frame delegate found drained (or whose discarded request may now be
    /// reset), and streams whose frame the HTTP/2 handler refused: handled once the handler's
    /// write returned (it calls the delegate between encoding a frame and writing it, so
    /// nothing may write from there).
    private var afterWrite: [HTTP2StreamID] = []
    private var refused: [HTTP2StreamID] = []
    private var afterWriteScheduled = false
    /// The HTTP/2 handler wrote a GOAWAY for a connection error.
    private var failed = false
    /// Proxies that were handed request parts in the current read burst.
    private var readers: [ProxyHandler] = []
    /// Streams whose request head waits for the next frame, at most until the read ends.
    private var pendingHeads: [HTTP2StreamID] = []
    private var lastStreamID = HTTP2StreamID.rootStream
    /// The client's address, its forwarding headers' facts and the loop's upstream pool,
    /// worked out once for all streams.
    private var shared: ProxyHandler.StreamContext?
    private var quiescing = false
    private var closing = false
    private var idleSince = NIODeadline.now()
    /// One timer per connection: every ``tick`` while streams are open (their proxies'
    /// timeouts), else at the end of the idle timeout.
    private var timer: NIOScheduledCallback?
    private var timerFiresAt: NIODeadline?
    /// How often open streams' deadlines are checked: a stream's timeouts (seconds, from
    /// the route) fire up to this much late, and no request schedules or cancels a timer
    /// (with 100 streams, NIO's cancel searches its queue linearly: 3.5% of the CPU).
    static let tick = TimeAmount.seconds(1)

    init(core: EngineCore, isTLS: Bool, carried: CarriedClientAddress?, tlsFacts: ConnectionTLSFactsBox?) {
        self.core = core
        self.isTLS = isTLS
        self.carried = carried
        self.tlsFacts = tlsFacts
        self.idleTimeout = core.state.limits.idleTimeout
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.armTimer(at: .now() + self.idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.closeAllStreams()
        self.readers.removeAll()
        self.pendingHeads.removeAll()
        self.timer?.cancel()
        self.timer = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeAllStreams()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            let stream = self.streams[frame.streamID]
            if stream?.isDiscarding == true {
                self.discard(frame.streamID, 0, ended: true, context: context)
            } else if let stream {
                // Trailers (the HTTP/2 handler checked that they end the stream).
                if let problem = HTTP2RequestBlock.trailersProblem(headers.headers) {
                    return self.rejectMalformed(frame.streamID, problem, context: context)
                }
                if let remaining = stream.remainingLength, remaining != 0 {
                    return self.rejectMalformed(frame.streamID, "body shorter than content-length", context: context)
                }
                let proxy = stream.proxy
                stream.requestEnded = true
                if stream.pendingHead != nil {
                    self.deliverPendingHead(frame.streamID, bodiless: false)
                }
                self.deliver(.end(HTTPHeaders(Self.fields(of: headers.headers))), to: proxy)
            } else {
                self.openStream(frame.streamID, headers: headers, context: context)
            }
        case .data(let data):
            self.received(data, on: frame.streamID, context: context)
        default:
            // SETTINGS, PING, WINDOW_UPDATE, PRIORITY, GOAWAY: the HTTP/2 handler's business.
            // RST_STREAM arrives as a StreamClosedEvent.
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !self.pendingHeads.isEmpty {
            for id in self.pendingHeads where self.stream(id)?.pendingHead != nil {
                self.deliverPendingHead(id, bodiless: false)
            }
            self.pendingHeads.removeAll(keepingCapacity: true)
        }
        if !self.readers.isEmpty {
            let readers = self.readers
            self.readers.removeAll(keepingCapacity: true)
            for proxy in readers { proxy.streamReadComplete() }
        }
        context.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in self.streams.values where stream.paused && stream.queued < Self.lowWatermark {
                // (After the HTTP/2 handler's own writability work, which runs before this.)
                stream.paused = false
                stream.proxy.downstreamBecameWritable()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Two events per stream that need nothing: told apart by type alone (a failed `as?`
        // on an `Any` costs a dynamic cast each).
        let type = type(of: event)
        if type == NIOHTTP2StreamCreatedEvent.self || type == NIOHTTP2BulkStreamWindowChangeEvent.self { return }
        switch event {
        case let closed as StreamClosedEvent:
            // Reset by the client (or by the HTTP/2 handler for a protocol error), or ended.
            self.remove(closed.streamID)?.proxy.streamClosed()
        case let update as NIOHTTP2WindowUpdatedEvent:
            // The connection window is given back as DATA arrives, whatever its stream: the
            // handler's own count (frames of streams closed meanwhile are not delivered here).
            if update.streamID == .rootStream, let window = update.inboundWindowSize,
                window <= Self.windowUpdateThreshold
            {
                self.writeWindowUpdate(.rootStream, Self.targetWindow - window, context: context)
            }
        case is ChannelShouldQuiesceEvent:
            self.quiesce(context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let refused = error as? NIOHTTP2Errors.StreamError {
            // The HTTP/2 handler refused a frame of ours (its stream state machine, e.g. a
            // frame for a stream the client closed meanwhile): that stream cannot complete;
            // it is reset.
            self.refused.append(refused.streamID)
            return self.scheduleAfterWrite()
        }
        // (NIOHTTP2 fires its few outbound connection errors without a GOAWAY: the one a
        // client can cause is a pile of control frames it does not read.)
        if error is any NIOHTTP2Error || error is any NIOHPACKError, !self.failed,
            !(error is NIOHTTP2Errors.ExcessiveOutboundFrameBuffering)
        {
            // A stream error of the client's: the HTTP/2 handler reset that stream (a
            // StreamClosedEvent follows); the other streams go on.
            return
        }
        // A connection error (the HTTP/2 handler wrote GOAWAY), or TLS/IO.
        self.core.logger.debug("HTTP/2 connection failed", metadata: ["error": "\(error)"])
        // After the flush of the GOAWAY the HTTP/2 handler wrote (deferred to the end of the
        // tick by the coalescing handler, whose task runs before this one).
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.execute { loopBound.value.close(promise: nil) }
    }

    // MARK: Requests

    private func openStream(
        _ id: HTTP2StreamID,
        headers: HTTP2Frame.FramePayload.Headers,
        context: ChannelHandlerContext
    ) {
        let head: HTTPRequestHead
        let contentLength: Int?
        switch HTTP2RequestBlock(headers.headers) {
        case .request(let request, let length):
            head = request
            contentLength = length
        case .connect:
            // Not proxied.
            return self.writeReset(id, .protocolError, context: context)
        case .malformed(let problem):
            return self.rejectMalformed(id, problem, context: context)
        }
        if headers.endStream, let contentLength, contentLength != 0 {
            return self.rejectMalformed(id, "no body but content-length \(contentLength)", context: context)
        }
        if id > self.lastStreamID { self.lastStreamID = id }
        self.tickSoon()
        let proxy = ProxyHandler(
            core: self.core,
            isTLS: self.isTLS,
            stream: HTTP2StreamLink(connection: self, id: id),
            carried: self.carried,
            tlsFacts: self.tlsFacts
        )
        self.streams[id] = Stream(proxy: proxy, requestEnded: headers.endStream, remainingLength: contentLength)
        self.activeStreams += 1
        self.shared = proxy.startStream(on: context.channel, shared: self.shared)
        if headers.endStream {
            self.deliver(.head(head), to: proxy)
            self.deliver(.end(nil), to: proxy)
        } else if contentLength != nil {
            // Its DATA is held to that length (``received(_:on:context:)``).
            self.deliver(.head(head), to: proxy)
        } else {
            // A body of unknown length, or none: many clients end a bodiless request with an
            // empty DATA frame right after its HEADERS. Wait for what follows, at most until
            // the end of this read.
            self.stream(id)?.pendingHead = head
            self.pendingHeads.append(id)
        }
    }

    /// Hands the proxy a head kept back by ``openStream``: as it is when the stream ended
    /// without a body; else with `Transfer-Encoding: chunked`, so that an HTTP/1.1 upstream
    /// reads the body as a body whatever the method (the bytes of a GET's body sent raw would
    /// be read as the next request: request smuggling).
    private func deliverPendingHead(_ id: HTTP2StreamID, bodiless: Bool) {
        guard let stream = self.streams[id], var head = stream.pendingHead else { return }
        let proxy = stream.proxy
        stream.pendingHead = nil
        if !bodiless { head.headers.add(name: "transfer-encoding", value: "chunked") }
        self.deliver(.head(head), to: proxy)
    }

    private func received(_ data: HTTP2Frame.FramePayload.Data, on id: HTTP2StreamID, context: ChannelHandlerContext) {
        let size = data.data.readableBytes
        let flowControlled = size + (data.paddingBytes ?? 0)
        guard let stream = self.streams[id] else { return }
        let proxy = stream.proxy
        if stream.isDiscarding {
            return self.discard(id, flowControlled, ended: data.endStream, context: context)
        }
        if let remaining = stream.remainingLength {
            // Checked before any of the bytes go on: a body longer than its declared length
            // would be read by an HTTP/1.1 upstream as a request of its own.
            let left = remaining - size
            guard left >= 0, left == 0 || !data.endStream else {
                let problem = left < 0 ? "body longer than content-length" : "body shorter than content-length"
                return self.rejectMalformed(id, problem, context: context)
            }
            stream.remainingLength = left
        }
        stream.unacknowledged += flowControlled
        if data.endStream { stream.requestEnded = true }
        if stream.pendingHead != nil {
            self.deliverPendingHead(id, bodiless: size == 0 && data.endStream)
        }
        if size > 0, case .byteBuffer(let buffer) = data.data {
            self.deliver(.body(buffer), to: proxy)
        }
        if data.endStream {
            self.deliver(.end(nil), to: proxy)
            return
        }
        guard self.streams[id] === stream else { return }  // (ended on the way)
        if proxy.mayReadRequestBody() {
            let unacknowledged = stream.unacknowledged
            if unacknowledged >= Self.windowUpdateThreshold {
                stream.unacknowledged = 0
                self.writeWindowUpdate(id, unacknowledged, context: context)
            }
        } else {
            stream.readHeld = true
        }
    }

    /// A malformed request (RFC 9113 8.1.1): the stream is reset with PROTOCOL_ERROR, and its
    /// proxy, if it has one, ends as when the client resets it (an upstream connection that
    /// got part of the request is closed, not reused).
    private func rejectMalformed(_ id: HTTP2StreamID, _ problem: String, context: ChannelHandlerContext) {
        self.core.logger.debug("malformed HTTP/2 request", metadata: ["stream": "\(id)", "problem": "\(problem)"])
        self.writeReset(id, .protocolError, context: context)
        self.remove(id)?.proxy.streamClosed()
    }

    private func deliver(_ part: HTTPServerRequestPart, to proxy: ProxyHandler) {
        if !proxy.inReadBurst { self.readers.append(proxy) }
        proxy.receiveStreamPart(part)
    }

    /// The proxy takes request bytes again: the window it held back is given back.
    func resumeReading(_ id: HTTP2StreamID) {
        guard let context = self.context, let stream = self.streams[id], stream.readHeld else { return }
        stream.readHeld = false
        let unacknowledged = stream.unacknowledged
        guard !stream.requestEnded, unacknowledged > 0 else { return }
        stream.unacknowledged = 0
        self.writeWindowUpdate(id, unacknowledged, context: context)
        context.flush()
    }

    // MARK: Responses

    func isWritable(_ id: HTTP2StreamID) -> Bool {
        guard let context = self.context, let stream = self.streams[id] else { return false }
        if stream.queued >= Self.highWatermark || !context.channel.isWritable {
            stream.paused = true
            return false
        }
        return true
    }

    func write(_ part: HTTPServerResponsePart, on id: HTTP2StreamID) {
        guard let context = self.context, let stream = self.streams[id], case .active = stream.state else { return }
        switch part {
        case .head(let head):
            self.writeHeld(id, context: context)
            let block = Self.responseBlock(head)
            if head.status.code < 200 {
                // 100 Continue and other interim responses go out as they are.
                self.writeFrame(id, .headers(.init(headers: block)), context: context)
            } else {
                stream.heldHead = block
            }
        case .body(.byteBuffer(let buffer)):
            guard buffer.readableBytes > 0 else { return }
            self.writeHeld(id, context: context)
            stream.heldData = buffer
        case .body(.fileRegion):
            preconditionFailure("the proxy never writes file regions")
        case .end(let trailers):
            if let trailers, !trailers.isEmpty {
                self.writeHeld(id, context: context)
                let block = Self.trailersBlock(trailers)
                self.writeFrame(id, .headers(.init(headers: block, endStream: true)), context: context)
            } else if let data = stream.heldData {
                stream.heldData = nil
                self.writeHead(id, context: context)
                self.writeData(id, data, endStream: true, context: context)
            } else if let head = stream.heldHead {
                stream.heldHead = nil
                self.writeFrame(id, .headers(.init(headers: head, endStream: true)), context: context)
            } else {
                self.writeData(id, ByteBuffer(), endStream: true, context: context)
            }
        }
    }

    func flush(_ id: HTTP2StreamID) {
        guard let context = self.context else { return }
        self.writeHeld(id, context: context)
        context.flush()
    }

    /// The stream's exchange is over: its response ended, or could not be completed (`reset`
    /// resets it at once, dropping what the HTTP/2 handler still holds for it).
    func finish(_ id: HTTP2StreamID, reset: HTTP2ErrorCode? = nil) {
        guard let context = self.context, let stream = self.streams[id] else { return }
        if let reset {
            self.writeReset(id, reset, context: context)
            self.remove(id)
        } else if !stream.requestEnded {
            // The whole response went out while the client is still sending: its body is read
            // and dropped (up to ``discardLimit`` and ``discardTime``), so that the sender of a
            // short body, or of the empty DATA frame many clients end a request with, gets the
            // response rather than a reset; after that, RST_STREAM (NO_ERROR once the response
            // has left, RFC 9113 section 8.1).
            self.retire(id, as: .discarding(until: .now() + Self.discardTime))
            stream.readHeld = false
            let unacknowledged = stream.unacknowledged
            if unacknowledged > 0 {
                stream.unacknowledged = 0
                self.writeWindowUpdate(id, unacknowledged, context: context)
            }
        } else if stream.endWritten {
            self.remove(id)
        } else {
            // Its END_STREAM waits for the client's window: the entry stays (a shutdown waits
            // for it) until the StreamClosedEvent.
            self.retire(id, as: .finished)
        }
        context.flush()
    }

    /// Request bytes of a stream whose response ended (see ``finish(_:reset:)``).
    private func discard(_ id: HTTP2StreamID, _ size: Int, ended: Bool, context: ChannelHandlerContext) {
        guard let stream = self.streams[id] else { return }
        let discarded = stream.discarded + size
        stream.discarded = discarded
        if ended {
            if stream.endWritten { self.remove(id) } else { stream.state = .finished }
        } else if discarded > Self.discardLimit {
            // Reset once the response has left (``runAfterWrite()``); until then no more window,
            // so the client waits.
            if stream.endWritten {
                self.writeReset(id, .noError, context: context)
                self.remove(id)
            }
        } else if size > 0 {
            self.writeWindowUpdate(id, size, context: context)
        }
    }

    /// Writes the held head and data of a stream, without ending it.
    private func writeHeld(_ id: HTTP2StreamID, context: ChannelHandlerContext) {
        self.writeHead(id, context: context)
        if let stream = self.streams[id], let data = stream.heldData {
            stream.heldData = nil
            self.writeData(id, data, endStream: false, context: context)
        }
    }

    private func writeHead(_ id: HTTP2StreamID, context: ChannelHandlerContext) {
        guard let stream = self.streams[id], let head = stream.heldHead else { return }
        stream.heldHead = nil
        self.writeFrame(id, .headers(.init(headers: head)), context: context)
    }

    private func writeData(_ id: HTTP2StreamID, _ data: ByteBuffer, endStream: Bool, context: ChannelHandlerContext) {
        self.stream(id)?.queued += data.readableBytes
        self.writeFrame(id, .data(.init(data: .byteBuffer(data), endStream: endStream)), context: context)
    }

    private func writeFrame(_ id: HTTP2StreamID, _ payload: HTTP2Frame.FramePayload, context: ChannelHandlerContext) {
        context.write(self.wrapOutboundOut(HTTP2Frame(streamID: id, payload: payload)), promise: nil)
    }

    private func writeWindowUpdate(_ id: HTTP2StreamID, _ increment: Int, context: ChannelHandlerContext) {
        self.writeFrame(id, .windowUpdate(windowSizeIncrement: increment), context: context)
    }

    private func writeReset(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode, context: ChannelHandlerContext) {
        self.writeFrame(id, .rstStream(code), context: context)
    }

    /// Called by the HTTP/2 handler for each frame it writes, after flow control let it go,
    /// between encoding the frame into its buffer and writing that buffer: only bookkeeping
    /// here; what must write (a proxy resuming its upstream) runs in ``runAfterWrite()``.
    func wroteFrame(_ frame: HTTP2Frame) {
        let id = frame.streamID
        switch frame.payload {
        case .data(let data):
            guard let stream = self.streams[id] else { return }
            let queued = stream.queued - data.data.readableBytes
            stream.queued = queued
            if data.endStream { stream.endWritten = true }
            if (stream.paused && queued < Self.lowWatermark) || (data.endStream && stream.isDiscarding) {
                self.afterWrite.append(id)
                self.scheduleAfterWrite()
            }
        case .headers(let headers) where headers.endStream:
            guard let stream = self.streams[id] else { return }
            stream.endWritten = true
            if stream.isDiscarding {
                self.afterWrite.append(id)
                self.scheduleAfterWrite()
            }
        case .goAway(_, let code, _) where code != .noError:
            self.failed = true
        default:
            break
        }
    }

    private func scheduleAfterWrite() {
        guard !self.afterWriteScheduled, let context = self.context else { return }
        self.afterWriteScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { loopBound.value.runAfterWrite() }
    }

    private func runAfterWrite() {
        self.afterWriteScheduled = false
        let drained = self.afterWrite
        let refused = self.refused
        self.afterWrite.removeAll(keepingCapacity: true)
        self.refused.removeAll(keepingCapacity: true)
        guard let context = self.context else { return }
        for id in refused where self.streams[id] != nil {
            // (The reset's StreamClosedEvent takes the stream out and tells its proxy.)
            self.writeReset(id, .internalError, context: context)
            self.remove(id)?.proxy.streamClosed()
        }
        for id in drained {
            guard let stream = self.streams[id] else { continue }
            if stream.isDiscarding, stream.endWritten, stream.discarded > Self.discardLimit {
                self.writeReset(id, .noError, context: context)
                self.remove(id)
            } else if stream.paused && stream.queued < Self.lowWatermark && context.channel.isWritable {
                stream.paused = false
                stream.proxy.downstreamBecameWritable()
            }
        }
        context.flush()
    }

    // MARK: Connection lifetime

    private func closeAllStreams() {
        let streams = self.streams
        self.streams = [:]
        self.activeStreams = 0
        for (_, stream) in streams { stream.proxy.streamClosed() }
    }

    /// A stream's exchange ended on this side; it stays in the table as `state`.
    private func retire(_ id: HTTP2StreamID, as state: Stream.State) {
        guard let stream = self.streams[id] else { return }
        let before = stream.state
        stream.state = state
        if case .active = before { self.exchangeEnded() }
    }

    /// The stream's entry (a dictionary read: its fields change through the reference).
    private func stream(_ id: HTTP2StreamID) -> Stream? { self.streams[id] }

    /// Takes a stream out of the table; once a quiescing connection has none, it closes.
    @discardableResult
    private func remove(_ id: HTTP2StreamID) -> Stream? {
        guard let stream = self.streams.removeValue(forKey: id) else { return nil }
        if case .active = stream.state { self.exchangeEnded() }
        if self.quiescing && self.streams.isEmpty { self.closeGracefully() }
        return stream
    }

    private func exchangeEnded() {
        self.activeStreams -= 1
        guard self.activeStreams == 0 else { return }
        self.idleSince = .now()
        // With streams left (finished, discarding), the tick runs and checks the idle time.
        if self.timer == nil && self.streams.isEmpty { self.armTimer(at: self.idleSince + self.idleTimeout) }
    }

    /// GOAWAY naming the last stream taken: the client opens no more, those open finish.
    private func quiesce(context: ChannelHandlerContext) {
        guard !self.quiescing else { return }
        self.quiescing = true
        self.writeFrame(
            .rootStream,
            .goAway(lastStreamID: self.lastStreamID, errorCode: .noError, opaqueData: nil),
            context: context
        )
        context.flush()
        if self.streams.isEmpty { self.closeGracefully() }
    }

    /// Closes once what was written is out (a final GOAWAY's write completing says so).
    private func closeGracefully() {
        guard !self.closing, let context = self.context else { return }
        self.closing = true
        let goAway = HTTP2Frame(
            streamID: .rootStream,
            payload: .goAway(lastStreamID: self.lastStreamID, errorCode: .noError, opaqueData: nil)
        )
        context.writeAndFlush(self.wrapOutboundOut(goAway)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func armTimer(at deadline: NIODeadline) {
        guard let context = self.context else { return }
        self.timerFiresAt = deadline
        self.timer = try? context.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    /// A stream opened: its deadlines are checked within a ``tick``.
    private func tickSoon() {
        let next = NIODeadline.now() + Self.tick
        if let firesAt = self.timerFiresAt, firesAt <= next { return }
        self.timer?.cancel()  // the idle timer: once per idle-to-busy change, not per request
        self.armTimer(at: next)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        self.timer = nil
        self.timerFiresAt = nil
        guard let context = self.context else { return }
        let now = NIODeadline.now()
        if !self.streams.isEmpty {
            // A proxy may end its stream (a 504) while this runs: iterate a copy.
            let streams = self.streams
            for (id, stream) in streams {
                switch stream.state {
                case .active:
                    stream.proxy.checkDeadline(now)
                case .discarding(let until) where until <= now:
                    self.writeReset(id, stream.endWritten ? .noError : .cancel, context: context)
                    self.remove(id)
                case .discarding, .finished:
                    break
                }
            }
            context.flush()
        }
        if self.activeStreams == 0 && !self.quiescing && self.idleSince + self.idleTimeout <= now {
            // Idle (finished streams still waiting for the client's window do not count).
            self.quiescing = true
            return self.closeGracefully()
        }
        guard self.timer == nil, self.context != nil else { return }
        if !self.streams.isEmpty {
            self.armTimer(at: now + Self.tick)
        } else if !self.quiescing {
            self.armTimer(at: self.idleSince + self.idleTimeout)
        }
    }

    // MARK: Conversions

    /// A response head as a HEADERS block: `:status` first, then ``outboundFields(_:into:dropLength:)``
    /// (no `Content-Length` on a 1xx or 204, RFC 9110 section 8.6).
    static func responseBlock(_ head: HTTPResponseHead) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(head.headers.count + 1)
        block.add(name: ":status", value: String(head.status.code))
        Self.outboundFields(head.headers, into: &block, dropLength: head.status.code < 200 || head.status.code == 204)
        return block
    }

    /// Response trailers as a HEADERS block (an HTTP/1 upstream may put anything in a
    /// chunked body's trailer section).
    static func trailersBlock(_ trailers: HTTPHeaders) -> HPACKHeaders {
        var block = HPACKHeaders()
        block.reserveCapacity(trailers.count)
        Self.outboundFields(trailers, into: &block, dropLength: false)
        return block
    }

    /// Fields on their way to an HTTP/2 client: names lowercased, without the
    /// connection-specific fields HTTP/2 forbids (RFC 9113 section 8.2.2) or `te`. NIOHTTP2
    /// does not check outbound blocks (its validation is off, see HTTP2RequestBlock.swift):
    /// this is the check.
    private static func outboundFields(_ fields: HTTPHeaders, into block: inout HPACKHeaders, dropLength: Bool) {
        for (name, value) in fields {
            let name = Self.lowercased(name)
            if HTTP2RequestBlock.isConnectionSpecific(name) || name == "te" { continue }
            if dropLength && name == "content-length" { continue }
            block.add(name: name, value: value)
        }
    }

    private static func fields(of block: HPACKHeaders) -> [(String, String)] {
        block.map { ($0.name, $0.value) }
    }

    /// `name` in lowercase, without a new string when it is lowercase already (the usual case).
    private static func lowercased(_ name: String) -> String {
        name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? name.lowercased() : name
    }
}
