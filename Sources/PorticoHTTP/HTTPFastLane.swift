#if os(Linux)
// The fast lane: plain-HTTP listeners served from Portico's own epoll loop on a thread of
// its own, instead of through NIO's channel pipeline (docs/architecture.md, "The fast lane").
//
// Why: on NIO the channel machinery alone (pipeline, pending writes, selector, promises)
// costs more user CPU per proxied HTTP/1.1 request than nginx spends on the whole request;
// a loop that reads and writes the sockets itself needs ~2 us (bench/epoll-spike).
//
// What the lane serves itself (stage 2): HTTP/1.1 requests without a body or with one framed
// by Content-Length (not CONNECT or TRACE) whose fields pass as bytes
// (HTTP1RequestDecoder.passFieldsRaw: nothing the proxy must change or read), on routes with
// no per-request policy (no redirect, source ranges, client certificates, rate limits,
// rewrite, app-root, auth, affinity) to plain HTTP/1.1 pools, with the engine's access log
// lines. It uses the engine's codec, route table, balancer order and
// ejection, metrics and answers (502, 504, 408: the texts of LocalAnswer, written by the same
// encoder), and retries as the engine does (the next endpoint after a connect failure, once
// more on a new connection when a reused one fails before answering). Everything else is
// handed to the NIO engine at a request boundary, with the bytes not yet answered (the
// descriptor changes owner): the engine's behaviour is the reference, not a copy.
//
// Sockets are edge-triggered (EPOLLET) and registered once, for reading and writing: no
// epoll_ctl per request. A readable edge is remembered (`readable`) while the other side
// cannot take more (backpressure) and acted on when it can.

import CPorticoEpoll
import Glibc
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOSSL

extension ByteBuffer {
    /// Before a read into the buffer: read bytes are dropped from the front, or a buffer that
    /// always keeps a few (the start of the next chunk or head) would grow with everything
    /// read through it.
    mutating func dropReadBytes() {
        if self.readableBytes == 0 {
            self.rewind()
        } else if self.readerIndex >= 65_536 {
            self.discardReadBytes()
        }
    }

    /// Empties the buffer where it is: both indices to 0. Unlike `clear()`, which allocates new
    /// storage when the buffer shares its storage (a slice or copy still alive, or the shared
    /// empty buffer), this never allocates; a later write copies if the storage is still shared.
    @inline(__always)
    mutating func rewind() {
        self.moveReaderIndex(to: 0)
        self.moveWriterIndex(to: 0)
    }
}

/// An epoll loop on its own thread that owns plain-HTTP listening sockets and serves the
/// common requests of their connections.
final class HTTPFastLane: @unchecked Sendable {
    /// A connection the lane does not serve (any more): its descriptor and the bytes read from
    /// it and not answered now belong to the callee. Called on the lane's thread.
    typealias Handoff =
        @Sendable (_ descriptor: CInt, _ listener: HTTPListener, _ bytes: ByteBuffer, _ origin: Origin)
        -> Void

    /// What a handed-over descriptor is.
    enum Origin: Sendable {
        /// The connection as accepted (with the bytes read from it, in plain HTTP): TLS, when
        /// the listener's, begins at its first byte (the lane only peeked at it).
        case accepted(TLSServer?)
        /// One end of a socket pair: the lane keeps the client's connection and relays an
        /// HTTP/1.1 connection from `client` to the listener's `localPort` over it: a TLS
        /// client's decrypted bytes, or an HTTP/2 stream's request (`overTLS`: the client's
        /// connection is TLS).
        case decrypted(client: SocketAddress?, localPort: Int?, overTLS: Bool)
    }

    /// A TLS listener's settings: the engine's context (for the connections handed over as
    /// accepted) and whether it offers HTTP/2 (a client that offers `h2` goes to the engine).
    struct TLSServer: Sendable {
        let context: NIOSSLContext
        let http2: Bool
    }

    /// A listening socket owned by the lane.
    final class Listener: Sendable {
        let descriptor: CInt
        let listener: HTTPListener
        let localAddress: SocketAddress
        let tls: TLSServer?
        /// The forwarding lines that are the same for every request of the listener: after
        /// the client's address, `x-forwarded-proto`; after the host, `x-forwarded-port` and
        /// the name of `x-real-ip` (whose value, the address again, follows).
        let afterAddress: ByteBuffer
        let afterHost: ByteBuffer

        fileprivate init(descriptor: CInt, listener: HTTPListener, localAddress: SocketAddress, tls: TLSServer?) {
            self.descriptor = descriptor
            self.listener = listener
            self.localAddress = localAddress
            self.tls = tls
            let forwarding = ForwardingContext(
                clientAddress: "",
                trusted: false,
                scheme: tls == nil ? "http" : "https",
                localPort: localAddress.port.map(String.init) ?? ""
            )
            self.afterAddress = forwarding.linesAfterAddress()
            self.afterHost = forwarding.linesAfterHost()
        }
    }

    private enum Tag: UInt64 {
        case wake = 0
        case listener = 1
        case client = 2
        case upstream = 3
        case relay = 4
    }

    /// What other threads share with the loop, under one lock.
    private struct Control {
        var commands: [@Sendable () -> Void] = []
        /// Set by ``shutdown()``: no command is taken any more.
        var stopped = false
        var thread: pthread_t?
    }

    // MARK: Deadlines

    /// Something with a deadline: kept in the list of its timeout value, whose members all got
    /// the same timeout and so are in deadline order (one list per value; few values exist).
    class Timed {
        /// The monotonic time it runs out, and the list it is in.
        @exclusivity(unchecked) fileprivate var deadline: UInt64 = 0
        @exclusivity(unchecked) fileprivate unowned(unsafe) var list: DeadlineList?
        /// Each node is owned by the one before it (`next`), the first by the list (`head`):
        /// the links back need no reference count (they point at nodes of the same list).
        @exclusivity(unchecked) fileprivate unowned(unsafe) var previous: Timed?
        @exclusivity(unchecked) fileprivate var next: Timed?
    }

    /// The nodes that got one timeout value, oldest first. Lists are kept for the lane's life
    /// (one per timeout value in use: header, idle, read, connect, upstream idle).
    final class DeadlineList {
        let timeout: UInt64
        @exclusivity(unchecked) var head: Timed?
        @exclusivity(unchecked) unowned(unsafe) var tail: Timed?

        init(timeout: UInt64) { self.timeout = timeout }

        func append(_ node: Timed) {
            node.list = self
            node.previous = self.tail
            node.next = nil
            if let tail = self.tail { tail.next = node } else { self.head = node }
            self.tail = node
        }

        func remove(_ node: Timed) {
            if let previous = node.previous { previous.next = node.next } else { self.head = node.next }
            if let next = node.next { next.previous = node.previous } else { self.tail = node.previous }
            node.previous = nil
            node.next = nil
            node.list = nil
        }
    }

    /// An access log line being filled in during an exchange (a class: a connection keeps a
    /// reference to it, not the line).
    final class LogLine {
        var entry: AccessLogEntry

        init(method: HTTPMethod, uri: String, version: HTTPVersion, host: String?, client: String) {
            self.entry = AccessLogEntry(method: method, uri: uri, version: version, host: host, client: client)
        }
    }

    /// A pool's idle connections to one endpoint.
    final class IdleConnections {
        @exclusivity(unchecked) var connections: [Upstream] = []
    }

    /// What the lane keeps per upstream pool of the current configuration: its endpoints,
    /// their idle connections, the round-robin position.
    final class PoolTarget {
        let pool: UpstreamPool
        let idle: [IdleConnections]
        @exclusivity(unchecked) var next = 0

        init(pool: UpstreamPool, idle: [IdleConnections]) {
            self.pool = pool
            self.idle = idle
        }
    }

    // MARK: Connections

    /// A client connection served by the lane.
    final class Client: Timed {
        enum State {
            /// Accepted, nothing read yet (the header timeout runs).
            case new
            /// Between requests (the idle timeout runs).
            case idle
            /// Part of a head is here (the header timeout runs).
            case readingHead
            /// A request is upstream; no response byte has come back.
            case waiting
            /// The response is being forwarded.
            case responding
            /// Everything it is owed is written; after the output drains it is handed over.
            case handingOver
            /// Its last response is being written; then the write side is shut and it lingers.
            case closing
            /// Write side shut; reading what the client still sends until it closes.
            case lingering
            /// TLS listener: waiting for the whole ClientHello (peeked at, not read).
            case hello
            /// The lane's TLS handshake is in progress.
            case handshaking
            /// Handed over after TLS: its decrypted bytes go through ``relay`` to the engine.
            case relaying
            /// An HTTP/2 connection (``http2``): its streams are exchanges of their own.
            case http2
        }

        let descriptor: CInt
        let generation: UInt32
        /// The listener that accepted it (its forwarding lines; handovers name its listener).
        let origin: Listener
        var listener: HTTPListener { self.origin.listener }
        /// The peer's address, as access log lines and forwarding fields name it.
        let clientAddress: String
        @exclusivity(unchecked) var state = State.new
        @exclusivity(unchecked) var decoder: HTTP1RequestDecoder
        /// Received, not yet answered (the next requests).
        @exclusivity(unchecked) var input = ByteBuffer()
        /// Response bytes the socket has not taken yet.
        @exclusivity(unchecked) var output = ByteBuffer()
        /// A readable edge not acted on yet (backpressure).
        @exclusivity(unchecked) var readable = false
        /// The peer closed its side (EPOLLRDHUP): read to the end of the stream.
        @exclusivity(unchecked) var hangup = false
        @exclusivity(unchecked) var peerClosed = false

        // The exchange in progress.
        @exclusivity(unchecked) var upstream: Upstream?
        /// The request as it goes upstream (kept to try the next endpoint).
        @exclusivity(unchecked) var upstreamRequest = ByteBuffer()
        @exclusivity(unchecked) var answeringHEAD = false
        /// When the exchange's request head was taken (the loop's clock).
        @exclusivity(unchecked) var started: UInt64 = 0
        /// The request's body (Content-Length) is still being read and sent: `decoder` is in
        /// it, and its bytes move from `input` to the upstream as the upstream takes them.
        @exclusivity(unchecked) var sendingBody = false
        /// As the engine: a failed connect tries the next endpoint only for idempotent methods,
        /// and a request is sent again after a reused connection failed only without a body.
        @exclusivity(unchecked) var idempotent = true
        @exclusivity(unchecked) var replayable = true
        @exclusivity(unchecked) var closeAfterResponse = false
        @exclusivity(unchecked) var route: HTTPRoute?
        @exclusivity(unchecked) var target: PoolTarget?
        @exclusivity(unchecked) var order: [Int]?
        @exclusivity(unchecked) var firstEndpoint = 0
        @exclusivity(unchecked) var attempts = 0
        /// The request was sent again after a reused connection failed (once, as the engine).
        @exclusivity(unchecked) var replayed = false
        @exclusivity(unchecked) var forceNewConnection = false
        @exclusivity(unchecked) var countedEndpoint: UpstreamEndpoint?
        /// The endpoint tried last (named by the access log line).
        @exclusivity(unchecked) var endpoint: UpstreamEndpoint?
        @exclusivity(unchecked) var encoder = HTTP1Encoder()
        /// The exchange's access log line, while one is configured (boxed: an idle connection
        /// keeps 8 bytes for it, not the line's 144).
        @exclusivity(unchecked) var log: LogLine?
        @exclusivity(unchecked) var accessLog: AccessLog?

        // TLS (a TLS listener's connections).
        /// The listener's TLS settings, until the ClientHello decided who terminates TLS.
        @exclusivity(unchecked) var tlsServer: TLSServer?
        /// The lane's TLS connection, once the lane took the handshake.
        @exclusivity(unchecked) var tls: LaneTLSConnection?
        /// The socket pair end to the engine, while ``State/relaying``.
        @exclusivity(unchecked) var relay: Relay?
        /// Counted among the open connections (a relayed client is the engine's to count).
        @exclusivity(unchecked) var counted = true

        // HTTP/2 (LaneHTTP2.swift).
        /// Nothing read yet may be the h2c preface.
        @exclusivity(unchecked) var mayBeHTTP2 = true
        @exclusivity(unchecked) var flushQueued = false
        /// The connection's HTTP/2 state, once it speaks HTTP/2.
        @exclusivity(unchecked) var http2: LaneHTTP2Connection?
        /// A stream's exchange: the stream (such a client has no socket of its own).
        @exclusivity(unchecked) var stream: LaneHTTP2Stream?

        init(descriptor: CInt, generation: UInt32, origin: Listener, clientAddress: String, limits: HTTPLimits) {
            self.descriptor = descriptor
            self.generation = generation
            self.origin = origin
            self.clientAddress = clientAddress
            self.decoder = HTTP1RequestDecoder(
                limits: HTTP1HeadLimits(
                    maxRequestLineSize: limits.maxRequestLineSize,
                    maxFieldSize: limits.maxHeaderFieldSize,
                    maxHeadSize: limits.maxHeaderSectionSize
                )
            )
            self.decoder.passFieldsRaw = true
        }

        var isBusy: Bool {
            switch self.state {
            case .waiting, .responding: return true
            default: return false
            }
        }
    }

    /// The lane's end of a socket pair whose other end the engine serves as the HTTP/1.1
    /// connection of a client whose TLS the lane terminates (``Client/State/relaying``).
    final class Relay {
        let descriptor: CInt
        let generation: UInt32
        let client: Client
        @exclusivity(unchecked) var readable = false
        @exclusivity(unchecked) var hangup = false
        /// The engine closed its end (after the last byte was read).
        @exclusivity(unchecked) var atEnd = false
        /// The engine takes no more bytes (its end is closed): the client's are dropped.
        @exclusivity(unchecked) var engineStopped = false
        /// The client's half-close was passed on (SHUT_WR).
        @exclusivity(unchecked) var shutDown = false

        init(descriptor: CInt, generation: UInt32, client: Client) {
            self.descriptor = descriptor
            self.generation = generation
            self.client = client
        }
    }

    /// A connection to an upstream endpoint.
    final class Upstream: Timed {
        let descriptor: CInt
        let generation: UInt32
        let endpoint: UpstreamEndpoint
        /// Where it waits between requests.
        let idle: IdleConnections
        @exclusivity(unchecked) var connecting = true
        @exclusivity(unchecked) var client: Client?
        @exclusivity(unchecked) var decoder = HTTP1ResponseDecoder(limits: UpstreamConnection.responseLimits)
        @exclusivity(unchecked) var input = ByteBuffer()
        @exclusivity(unchecked) var output = ByteBuffer()
        @exclusivity(unchecked) var readable = false
        /// The peer closed its side (EPOLLRDHUP): read to the end of the stream.
        @exclusivity(unchecked) var hangup = false
        /// The response said the connection may carry another request.
        @exclusivity(unchecked) var reusable = false
        /// A request was already answered on it (a failure before the answer may be staleness).
        @exclusivity(unchecked) var reused = false
        /// Its stream ended (read returned 0 or failed).
        @exclusivity(unchecked) var atEnd = false

        init(descriptor: CInt, generation: UInt32, endpoint: UpstreamEndpoint, idle: IdleConnections) {
            self.descriptor = descriptor
            self.generation = generation
            self.endpoint = endpoint
            self.idle = idle
            self.decoder.passFieldsRaw = true
        }
    }

    private let epoll: CInt
    private let wake: CInt
    private let handoff: Handoff
    private let core: EngineCore
    private let logger: Logger
    private let control = NIOLockedValueBox(Control())
    /// What the engine and tests read: clients held (for ``HTTPEngine/openConnections`` and
    /// drains), requests answered here, connections handed over.
    struct Statistics {
        var clients = 0
        var served = 0
        var handedOver = 0
        /// TLS handshakes the lane made (clients that did not offer `h2`), and those of them
        /// later relayed to the engine.
        var tlsHandshakes = 0
        var relayed = 0
        /// Relays open now.
        var relays = 0
        /// HTTP/2 connections the lane took (ALPN h2, or the h2c preface), and streams of
        /// theirs relayed to the engine.
        var http2Connections = 0
        var relayedStreams = 0
    }

    private let shared = NIOLockedValueBox(Statistics())

    // Loop-only state. It, and the connection objects, are touched by the lane's thread only,
    // never in overlapping accesses: their dynamic exclusivity checks (~10% of a request's
    // user CPU in perf) are off (`@exclusivity(unchecked)`).
    @exclusivity(unchecked) private var listeners: [CInt: Listener] = [:]
    @exclusivity(unchecked) private var running = true
    /// Shutting down: idle clients close, busy ones after their response; nothing new starts.
    @exclusivity(unchecked) private var draining = false
    /// Listeners taken out of the loop after accept ran out of descriptors, and when to retry.
    @exclusivity(unchecked) private var paused: [(Listener, retryAt: timespec)] = []
    @exclusivity(unchecked) private var clients: [Client?] = []
    @exclusivity(unchecked) private var upstreams: [Upstream?] = []
    @exclusivity(unchecked) private var relays: [Relay?] = []
    /// Idle connections by endpoint (shared by the pools that name it), and the pools of the
    /// configuration last seen, with the last route's for a lookup-free common case.
    @exclusivity(unchecked) private var idle: [UpstreamEndpoint: IdleConnections] = [:]
    @exclusivity(unchecked) private var targets: [String: PoolTarget] = [:]
    @exclusivity(unchecked) private var targetsState: EngineState?
    @exclusivity(unchecked) private var lastRoute: HTTPRoute?
    @exclusivity(unchecked) private var lastTarget: PoolTarget?
    @exclusivity(unchecked) private var addresses: [UpstreamEndpoint: SocketAddress] = [:]
    @exclusivity(unchecked) private var deadlines: [DeadlineList] = []
    @exclusivity(unchecked) private var generation: UInt32 = 0
    @exclusivity(unchecked) private var now: UInt64 = 0
    @exclusivity(unchecked) private var health = EndpointHealth()
    /// The limits of the configuration last read (at each accept and request), so the rest of
    /// an exchange takes no lock.
    @exclusivity(unchecked) private var limits = HTTPLimits()
    private let metrics: LoopMetrics
    private let allocator = ByteBufferAllocator()
    /// Emptied buffers of connections between requests: an idle keep-alive connection holds no
    /// buffer (nginx frees its buffers there too), and a busy one takes one from here instead
    /// of allocating. Sized by use: as many as exchanges in flight needed at once (up to
    /// ``spareLimit``), less what went unused for a ``trimInterval`` (``trimSpares()``).
    @exclusivity(unchecked) private var spares: [ByteBuffer] = []
    /// The fewest spares held since the last trim: that many were not needed meanwhile.
    @exclusivity(unchecked) private var sparesLow = 0
    @exclusivity(unchecked) private var nextTrim: UInt64 = 0
    private static let trimInterval: UInt64 = 1_000_000_000
    /// Where decoders write the field lines of a head they keep as bytes: one storage for all
    /// (each head's fields are written on before the next head is read), so no allocation
    /// per head. Decoders let go of it once the fields are written (`rawFields = nil`).
    @exclusivity(unchecked) private var fieldStorage = ByteBuffer()
    /// HTTP/2 connections with frames to write at the end of the loop's turn.
    @exclusivity(unchecked) fileprivate var flushQueue: [Client] = []
    /// (With 50 busy keep-alive connections 64 were too few: a buffer in three was allocated
    /// and freed again per request.)
    private static let spareLimit = 512
    /// Larger buffers (a burst, a long download) are freed rather than kept: at most 16 MiB of
    /// spares per lane, for a second after the burst that needed them.
    private static let spareCapacity = 32_768

    /// Connections the lane holds now.
    var openClients: Int { self.shared.withLockedValue { $0.clients } }

    var statistics: Statistics { self.shared.withLockedValue { $0 } }

    /// Buffer storage held by the lane's connections that wait between requests (for tests:
    /// none, their buffers go back to the spares).
    func idleClientBufferCapacity() async -> Int {
        await withCheckedContinuation { continuation in
            let accepted = self.execute { [self] in
                var total = 0
                for case let client? in self.clients where client.state == .idle {
                    total += client.input.capacity + client.output.capacity + client.upstreamRequest.capacity
                }
                continuation.resume(returning: total)
            }
            if !accepted { continuation.resume(returning: 0) }
        }
    }

    init(core: EngineCore, handoff: @escaping Handoff) throws {
        self.core = core
        self.logger = core.logger
        self.handoff = handoff
        self.metrics = LoopMetrics(factory: core.metricsFactory)
        // A peer that closed must fail the write, not stop the process (NIO does the same).
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
        self.epoll = epoll_create1(CInt(EPOLL_CLOEXEC))
        guard self.epoll >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        self.wake = eventfd(0, CInt(EFD_NONBLOCK | EFD_CLOEXEC))
        guard self.wake >= 0 else {
            Glibc.close(self.epoll)
            throw IOError(errnoCode: errno, reason: "eventfd")
        }
        _ = portico_epoll_ctl(self.epoll, EPOLL_CTL_ADD, self.wake, EPOLLIN.rawValue, Self.tag(.wake, self.wake))
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(
            &thread,
            nil,
            { argument in
                let lane = Unmanaged<HTTPFastLane>.fromOpaque(argument!).takeRetainedValue()
                lane.run()
                return nil
            },
            box.toOpaque()
        )
        guard result == 0 else {
            box.release()
            Glibc.close(self.wake)
            Glibc.close(self.epoll)
            throw IOError(errnoCode: result, reason: "pthread_create")
        }
        self.control.withLockedValue { $0.thread = thread }
    }

    /// Asks the lane's connections to finish: idle ones close now, busy ones after their
    /// response. (Listeners are closed by the engine first.)
    func quiesce() {
        self.execute { [self] in
            self.draining = true
            for client in self.clients {
                guard let client else { continue }
                switch client.state {
                case .new, .idle, .readingHead: self.closeClient(client)
                case .waiting, .responding: client.closeAfterResponse = true
                case .hello, .handshaking: self.closeClient(client)
                case .http2: self.goAway(client)
                case .handingOver, .closing, .lingering, .relaying: break
                }
            }
        }
    }

    /// Stops the loop and waits for its thread; listeners and connections still open are
    /// closed. Later calls to the lane do nothing (``listen(_:)`` throws). Not from the
    /// lane's thread.
    func shutdown() {
        let thread: pthread_t? = self.control.withLockedValue { control in
            guard !control.stopped else { return nil }
            control.stopped = true
            control.commands.append { [self] in self.running = false }
            self.signal()
            defer { control.thread = nil }
            return control.thread
        }
        guard let thread else { return }
        pthread_join(thread, nil)
        // Commands queued after the loop's last turn (a listener registered or closed while
        // shutting down) run here, so none is lost and every continuation resumes.
        let leftover = self.control.withLockedValue { control in
            defer { control.commands = [] }
            return control.commands
        }
        for command in leftover { command() }
        for (descriptor, _) in self.listeners { Glibc.close(descriptor) }
        for (listener, _) in self.paused { Glibc.close(listener.descriptor) }
        for client in self.clients { if let client { self.closeClient(client) } }
        for upstream in self.upstreams { if let upstream { self.closeUpstream(upstream) } }
        self.listeners = [:]
        self.paused = []
        self.deadlines = []
        Glibc.close(self.wake)
        Glibc.close(self.epoll)
    }

    // MARK: Listeners

    /// Binds and listens on `listener`'s address and port (here, so errors reach the caller),
    /// then lets the loop accept on it. `port`: another port than the listener's (the one the
    /// first lane got for port 0); `reusePort`: SO_REUSEPORT, for one socket per lane; `tls`:
    /// a TLS listener's settings.
    func listen(
        _ listener: HTTPListener,
        port: Int? = nil,
        reusePort: Bool = false,
        tls: TLSServer? = nil
    ) throws -> Listener {
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: listener.address, port: port ?? listener.port)
        } catch {
            throw HTTPEngineError.invalidListenerAddress(listener.address)
        }
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let descriptor = socket(
            family,
            CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue),
            0
        )
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let size = socklen_t(MemoryLayout<CInt>.size)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, size)
        if reusePort { _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &one, size) }
        // IP_FREEBIND: bind a virtual IP before this node holds it (as the NIO listeners do).
        _ = setsockopt(descriptor, CInt(IPPROTO_IP), 15, &one, size)
        let bound = address.withSockAddr { pointer, length in bind(descriptor, pointer, socklen_t(length)) }
        guard bound == 0, Glibc.listen(descriptor, 1024) == 0 else {
            let error = IOError(errnoCode: errno, reason: "bind \(listener.address):\(port ?? listener.port)")
            Glibc.close(descriptor)
            throw error
        }
        // The port actually bound (port 0 picks one); sin_port and sin6_port share an offset.
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        let boundPort = named == 0 ? Int(UInt16(bigEndian: storage.sin6_port)) : (port ?? listener.port)
        let localAddress = (try? SocketAddress(ipAddress: listener.address, port: boundPort)) ?? address
        let result = Listener(descriptor: descriptor, listener: listener, localAddress: localAddress, tls: tls)
        let accepted = self.execute { [self] in
            self.listeners[descriptor] = result
            _ = portico_epoll_ctl(
                self.epoll,
                EPOLL_CTL_ADD,
                descriptor,
                EPOLLIN.rawValue,
                Self.tag(.listener, descriptor)
            )
        }
        guard accepted else {
            Glibc.close(descriptor)
            throw IOError(errnoCode: ESHUTDOWN, reason: "the fast lane is shut down")
        }
        return result
    }

    /// Stops accepting on `listener` and closes its socket; returns once that is done.
    func stopListening(_ listener: Listener) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queued = self.execute { [self] in
                if self.listeners[listener.descriptor] === listener {
                    self.listeners[listener.descriptor] = nil
                    _ = epoll_ctl(self.epoll, EPOLL_CTL_DEL, listener.descriptor, nil)
                    Glibc.close(listener.descriptor)
                } else if let index = self.paused.firstIndex(where: { $0.0 === listener }) {
                    self.paused.remove(at: index)
                    Glibc.close(listener.descriptor)
                }
                continuation.resume()
            }
            // Shut down: every listener was closed then.
            if !queued { continuation.resume() }
        }
    }

    // MARK: The loop

    /// Runs `work` on the loop's thread; false once the lane is shut down.
    @discardableResult
    private func execute(_ work: @escaping @Sendable () -> Void) -> Bool {
        // The wake-up is written under the lock: `shutdown` closes the eventfd only after it
        // has set `stopped` under that lock, so this never writes to a reused descriptor.
        self.control.withLockedValue { control in
            guard !control.stopped else { return false }
            control.commands.append(work)
            self.signal()
            return true
        }
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(self.wake, &one, 8)
    }

    /// Kind in the top byte, a generation (connections: so an event for a closed descriptor
    /// whose number was reused is recognised) in the next three, the descriptor below.
    private static func tag(_ tag: Tag, _ descriptor: CInt, generation: UInt32 = 0) -> UInt64 {
        tag.rawValue << 56 | UInt64(generation & 0xFF_FFFF) << 32 | UInt64(UInt32(bitPattern: descriptor))
    }

    private func nextGeneration() -> UInt32 {
        self.generation = (self.generation &+ 1) & 0xFF_FFFF
        return self.generation
    }

    private func run() {
        Self.nameThread("portico-fast")
        let capacity: CInt = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        defer { events.deallocate() }
        self.now = Self.monotonic()
        while self.running {
            let ready = epoll_wait(self.epoll, events, capacity, self.timeout())
            if ready < 0 {
                let error = errno
                if error == EINTR { continue }
                self.logger.error("fast lane: epoll_wait failed", metadata: ["errno": "\(error)"])
                return
            }
            self.now = Self.monotonic()
            if !self.paused.isEmpty { self.resumePaused() }
            for index in 0..<Int(ready) {
                let tag = portico_epoll_tag(events, CInt(index))
                let mask = portico_epoll_events(events, CInt(index))
                let descriptor = CInt(bitPattern: UInt32(truncatingIfNeeded: tag))
                let generation = UInt32(truncatingIfNeeded: tag >> 32) & 0xFF_FFFF
                switch Tag(rawValue: tag >> 56) {
                case .wake: self.runCommands()
                case .listener: if let listener = self.listeners[descriptor] { self.accept(listener) }
                case .client:
                    guard Int(descriptor) < self.clients.count, let client = self.clients[Int(descriptor)],
                        client.generation == generation
                    else { continue }
                    self.clientEvent(client, mask)
                case .upstream:
                    guard Int(descriptor) < self.upstreams.count, let upstream = self.upstreams[Int(descriptor)],
                        upstream.generation == generation
                    else { continue }
                    self.upstreamEvent(upstream, mask)
                case .relay:
                    guard Int(descriptor) < self.relays.count, let relay = self.relays[Int(descriptor)],
                        relay.generation == generation
                    else { continue }
                    self.relayEvent(relay, mask)
                case nil: break
                }
            }
            if !self.flushQueue.isEmpty { self.flushQueued() }
            self.expire()
            if !self.flushQueue.isEmpty { self.flushQueued() }
            if self.now >= self.nextTrim { self.trimSpares() }
        }
    }

    private func runCommands() {
        var value: UInt64 = 0
        _ = read(self.wake, &value, 8)
        let work = self.control.withLockedValue { control in
            defer { control.commands = [] }
            return control.commands
        }
        for command in work { command() }
    }

    private static func monotonic() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    private static func nanoseconds(_ amount: TimeAmount) -> UInt64 { UInt64(max(0, amount.nanoseconds)) }

    /// Names the calling thread for ps and perf (at most 15 bytes).
    private static func nameThread(_ name: String) {
        portico_name_thread(name)
    }

    // MARK: Deadlines

    private func setDeadline(_ node: Timed, in timeout: UInt64) {
        if let list = node.list {
            if list.timeout == timeout, node.next == nil {
                // Already last of its list: only the time moves (the common case).
                node.deadline = self.now + timeout
                return
            }
            list.remove(node)
        }
        node.deadline = self.now + timeout
        self.list(for: timeout).append(node)
    }

    private func list(for timeout: UInt64) -> DeadlineList {
        for list in self.deadlines where list.timeout == timeout { return list }
        let list = DeadlineList(timeout: timeout)
        self.deadlines.append(list)
        return list
    }

    private func clearDeadline(_ node: Timed) {
        node.list?.remove(node)
    }

    private func expire() {
        for list in self.deadlines {
            while let node = list.head, node.deadline <= self.now {
                list.remove(node)
                if let client = node as? Client {
                    self.clientTimedOut(client)
                } else if let upstream = node as? Upstream {
                    self.upstreamTimedOut(upstream)
                }
            }
        }
    }

    /// epoll_wait's timeout: until the next deadline, 100 ms while a listener is paused, the
    /// next trim while there are spares.
    private func timeout() -> CInt {
        var timeout: CInt = self.paused.isEmpty ? -1 : 100
        let now = Self.monotonic()
        if !self.spares.isEmpty {
            let trim = self.nextTrim > now ? CInt((self.nextTrim - now + 999_999) / 1_000_000) : 0
            timeout = timeout < 0 ? trim : min(timeout, trim)
        }
        for list in self.deadlines {
            guard let deadline = list.head?.deadline else { continue }
            let milliseconds = deadline > now ? CInt(min((deadline - now + 999_999) / 1_000_000, 60_000)) : 0
            timeout = timeout < 0 ? milliseconds : min(timeout, milliseconds)
        }
        return timeout
    }

    // MARK: Accepting

    private func accept(_ listener: Listener) {
        while true {
            var storage = sockaddr_in6()
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let descriptor = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    portico_accept4(
                        listener.descriptor,
                        $0,
                        &length,
                        CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
                    )
                }
            }
            if descriptor < 0 {
                let error = errno
                switch error {
                case EAGAIN:
                    return
                case EINTR, ECONNABORTED, EPROTO, EPERM:
                    // One connection failed before it was taken; go on with the next.
                    continue
                default:
                    // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or worse:
                    // stop accepting on this listener for a moment rather than spin on a
                    // socket that stays readable.
                    self.logger.warning(
                        "fast lane: accept failed, pausing the listener for 100 ms",
                        metadata: [
                            "listener": "\(listener.listener.address):\(listener.listener.port)", "errno": "\(error)",
                        ]
                    )
                    _ = epoll_ctl(self.epoll, EPOLL_CTL_DEL, listener.descriptor, nil)
                    self.listeners[listener.descriptor] = nil
                    var retry = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &retry)
                    retry.tv_nsec += 100_000_000
                    if retry.tv_nsec >= 1_000_000_000 {
                        retry.tv_sec += 1
                        retry.tv_nsec -= 1_000_000_000
                    }
                    self.paused.append((listener, retry))
                    return
                }
            }
            var one: CInt = 1
            _ = setsockopt(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
            let peer = Self.address(storage)
            let state = self.core.state
            self.limits = state.limits
            let peerBytes = IPAddressRange.bytes(of: peer)
            if let peers = state.proxyProtocolPeers[listener.listener]
                ?? Optional(listener.listener.acceptProxyProtocolFrom),
                !peers.isEmpty, let peerBytes, peers.contains(where: { $0.contains(peerBytes) })
            {
                // A PROXY header comes first: the engine reads it.
                self.handoff(descriptor, listener.listener, ByteBuffer(), .accepted(listener.tls))
                continue
            }
            let client = Client(
                descriptor: descriptor,
                generation: self.nextGeneration(),
                origin: listener,
                clientAddress: peer?.ipAddress ?? "",
                limits: state.limits
            )
            if let tls = listener.tls {
                client.state = .hello
                client.tlsServer = tls
            }
            self.core.openConnections.increment()
            self.shared.withLockedValue { $0.clients += 1 }
            self.store(client)
            self.setDeadline(client, in: Self.nanoseconds(state.limits.headerReadTimeout))
            _ = portico_epoll_ctl(
                self.epoll,
                EPOLL_CTL_ADD,
                descriptor,
                EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue,
                Self.tag(.client, descriptor, generation: client.generation)
            )
        }
    }

    private static func address(_ storage: sockaddr_in6) -> SocketAddress? {
        var storage = storage
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> SocketAddress? in
                switch CInt(address.pointee.sa_family) {
                case AF_INET:
                    return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        SocketAddress($0.pointee, host: "")
                    }
                case AF_INET6:
                    return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        SocketAddress($0.pointee, host: "")
                    }
                default:
                    return nil
                }
            }
        }
    }

    private func store(_ client: Client) {
        let index = Int(client.descriptor)
        if index >= self.clients.count {
            self.clients.append(contentsOf: repeatElement(nil, count: index + 1 - self.clients.count))
        }
        self.clients[index] = client
    }

    private func store(_ upstream: Upstream) {
        let index = Int(upstream.descriptor)
        if index >= self.upstreams.count {
            self.upstreams.append(contentsOf: repeatElement(nil, count: index + 1 - self.upstreams.count))
        }
        self.upstreams[index] = upstream
    }

    private func resumePaused() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        self.paused.removeAll { listener, retryAt in
            guard now.tv_sec > retryAt.tv_sec || (now.tv_sec == retryAt.tv_sec && now.tv_nsec >= retryAt.tv_nsec) else {
                return false
            }
            self.listeners[listener.descriptor] = listener
            _ = portico_epoll_ctl(
                self.epoll,
                EPOLL_CTL_ADD,
                listener.descriptor,
                EPOLLIN.rawValue,
                Self.tag(.listener, listener.descriptor)
            )
            return true
        }
    }

    // MARK: Reading and writing

    /// Reads what `descriptor` has into `buffer`, until the socket is drained (a short read)
    /// or `limit` bytes are buffered. Returns false when the peer closed or the read failed;
    /// `drained`: the edge was used up. `hangup`: the peer closed its side (EPOLLRDHUP), so a
    /// short read is not the end: reading goes on to the end of the stream, which no other
    /// edge would report.
    private static func readAll(
        _ descriptor: CInt,
        into buffer: inout ByteBuffer,
        limit: Int,
        hangup: Bool,
        drained: inout Bool
    ) -> Bool {
        drained = false
        while buffer.readableBytes < limit {
            buffer.dropReadBytes()
            var failure: CInt = 0
            let room = max(16_384, buffer.writableBytes)
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { pointer in
                let count = read(descriptor, pointer.baseAddress, pointer.count)
                failure = count < 0 ? errno : 0
                return max(count, 0)
            }
            if count == 0 {
                if failure == EAGAIN || failure == EINTR {
                    drained = failure == EAGAIN
                    if failure == EINTR { continue }
                    return true
                }
                return false  // end of stream, or an error
            }
            if count < room && !hangup {
                drained = true
                return true
            }
        }
        return true
    }

    /// Reads what the client sent into `client.input` (through its TLS connection, if any; a
    /// spare's storage when the buffer has none); `readable` is cleared once the edge is used
    /// up. False at the end of the stream or on an error.
    private func receive(_ client: Client, limit: Int) -> Bool {
        self.provide(&client.input)
        var drained = false
        let open = self.readClientBytes(client, into: &client.input, limit: limit, drained: &drained)
        if drained { client.readable = false }
        return open
    }

    private func readClientBytes(
        _ client: Client,
        into buffer: inout ByteBuffer,
        limit: Int,
        drained: inout Bool
    )
        -> Bool
    {
        if let tls = client.tls { return tls.read(into: &buffer, limit: limit, drained: &drained) }
        return Self.readAll(client.descriptor, into: &buffer, limit: limit, hangup: client.hangup, drained: &drained)
    }

    /// ``readAll`` into `buffer` (given a spare's storage when it has none); `readable` is
    /// cleared once the edge is used up. False at the end of the stream or on an error.
    private func receive(
        _ descriptor: CInt,
        into buffer: inout ByteBuffer,
        limit: Int,
        hangup: Bool,
        readable: inout Bool
    ) -> Bool {
        self.provide(&buffer)
        var drained = false
        let open = Self.readAll(descriptor, into: &buffer, limit: limit, hangup: hangup, drained: &drained)
        if drained { readable = false }
        return open
    }

    /// Writes what `output` holds; false when the connection failed.
    private static func flush(_ descriptor: CInt, _ output: inout ByteBuffer) -> Bool {
        while output.readableBytes > 0 {
            var failure: CInt = 0
            let written = output.withUnsafeReadableBytes { pointer in
                let count = write(descriptor, pointer.baseAddress, pointer.count)
                failure = count < 0 ? errno : 0
                return count
            }
            if written < 0 {
                if failure == EINTR { continue }
                // What is left moves to the front now and then, or a buffer that never empties
                // completely would grow with everything ever written through it.
                if failure == EAGAIN, output.readerIndex >= 65_536 { output.discardReadBytes() }
                return failure == EAGAIN
            }
            output.moveReaderIndex(forwardBy: written)
        }
        output.rewind()
        return true
    }

    // MARK: Clients

    /// Most bytes buffered from a client while its request is upstream (pipelined requests);
    /// more waits in the socket.
    private static let inputLimit = 65_536
    /// Most response bytes buffered for a client before the upstream is read no further.
    private static let outputLimit = 262_144

    private func clientEvent(_ client: Client, _ mask: UInt32) {
        if mask & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            client.readable = true
        }
        if mask & (EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { client.hangup = true }
        switch client.state {
        // TLS being set up, or relayed (HTTPFastLane "TLS clients").
        case .hello: if client.readable { self.readHello(client) }
        case .handshaking: self.continueHandshake(client)
        case .relaying: if let relay = client.relay { self.pumpRelay(relay) }
        default:
            if mask & EPOLLOUT.rawValue != 0 || mask & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
                guard self.flushClient(client) else { return }
            }
            if client.readable { self.readClient(client) }
        }
    }

    private func readClient(_ client: Client) {
        guard self.clients[Int(client.descriptor)] === client else { return }
        if client.state == .http2 { return self.readHTTP2(client) }
        if client.state == .lingering {
            var scratch = ByteBuffer()
            var drained = false
            while self.readClientBytes(client, into: &scratch, limit: 65_536, drained: &drained), !drained {
                scratch.clear()
            }
            if !drained { self.closeClient(client) }
            client.readable = false
            return
        }
        // While busy, pipelined bytes are buffered up to a bound, the rest waits in the socket.
        let limit = client.isBusy || client.state == .closing ? Self.inputLimit : Self.inputLimit * 4
        guard client.input.readableBytes < limit else { return }
        let open = self.receive(client, limit: limit)
        if !open {
            // The client is gone (or closed its side: nothing more will be asked).
            client.peerClosed = true
            client.readable = false
            switch client.state {
            case .new, .idle, .readingHead:
                if client.input.readableBytes == 0 || client.state == .new { return self.closeClient(client) }
            // A last request arrived with the close: answer it if it is whole.
            case .waiting, .responding, .closing, .lingering, .handingOver, .hello, .handshaking, .relaying, .http2:
                return self.closeClient(client)
            }
        }
        switch client.state {
        case .new, .idle, .readingHead: self.serveNext(client)
        case .waiting, .responding: if client.sendingBody { self.sendBody(client) }
        default: break
        }
    }

    /// Starts the next request in `client.input`: served here when it can be, else the
    /// connection goes to the engine with the bytes.
    private func serveNext(_ client: Client) {
        guard client.input.readableBytes > 0 else {
            if client.peerClosed { return self.closeClient(client) }
            // (A read that found nothing, e.g. a late edge: the buffer it took goes back.)
            if client.state == .idle || client.state == .new { self.park(&client.input) }
            return
        }
        // (A stream's exchange was taken before the GOAWAY: it is served.)
        if self.draining, client.stream == nil { return self.closeClient(client) }
        if client.mayBeHTTP2 {
            // Plain HTTP: the h2c preface (HTTP/2 with prior knowledge) as the first bytes?
            switch client.tls == nil ? LaneHTTP2Wire.startsWithPreface(client.input) : false {
            case true?:
                guard Self.mayServeHTTP2(serverName: nil, overTLS: false, in: self.core.state) else {
                    return self.handOver(client)
                }
                return self.startHTTP2(client)
            case nil:
                if client.state != .readingHead {
                    client.state = .readingHead
                    self.setDeadline(client, in: Self.nanoseconds(self.limits.headerReadTimeout))
                }
                if client.peerClosed { return self.closeClient(client) }
                return
            case false?:
                client.mayBeHTTP2 = false
            }
        }
        // Decoded on copies: a request the lane does not serve is handed over untouched.
        var buffer = client.input
        var decoder = client.decoder
        let head: HTTPRequestLine
        do {
            guard let (decoded, _) = try decoder.nextHead(&buffer, fieldStorage: &self.fieldStorage) else {
                // Part of a head: the header timeout runs from its first bytes (as in the engine).
                if client.state != .readingHead {
                    client.state = .readingHead
                    self.setDeadline(client, in: Self.nanoseconds(self.limits.headerReadTimeout))
                }
                if client.peerClosed { return self.closeClient(client) }
                // The rest may still be in the socket (input was at its bound): no edge will
                // say so again.
                if client.readable { self.readClient(client) }
                return
            }
            head = decoded
            // Without a body its end follows at once; a body (Content-Length) is read as the
            // upstream takes it.
            if !decoder.headFacts.hasBody {
                guard case .end(nil)? = try decoder.next(&buffer) else { return self.handOver(client) }
            }
        } catch {
            return self.handOver(client)  // the engine answers malformed requests
        }
        let facts = decoder.headFacts
        // (CONNECT and TRACE get the engine's special answers; POST, PUT and PATCH without a
        // Content-Length go upstream with an empty chunked body from the engine.)
        let unframed =
            facts.contentLength == nil && (head.method == .POST || head.method == .PUT || head.method == .PATCH)
        guard let fields = decoder.rawFields, head.method != .CONNECT, head.method != .TRACE, !unframed,
            facts.hostCount == 1,
            facts.transferEncodingCount == 0, !facts.conflictingContentLength, !facts.expectsContinue,
            !facts.isUpgrade
        else { return self.handOver(client) }
        let state = self.core.state
        self.limits = state.limits
        guard let route = state.routes.lookup(host: facts.host.map { Substring($0) }, path: Substring(head.uri)),
            Self.servesPolicy(of: route, overTLS: client.tls != nil || client.stream?.connection.tls != nil),
            route.maxBodySize.map({ (facts.contentLength ?? 0) <= $0 }) ?? true,
            let target = self.target(of: route, in: state)
        else { return self.handOver(client) }
        let pool = target.pool

        // Taken: the request is the lane's.
        client.input = buffer
        buffer = ByteBuffer()  // (client.input the one reference: no copy when it is written or parked)
        decoder.rawFields = nil
        client.decoder = decoder
        client.state = .waiting
        client.route = route
        client.answeringHEAD = head.method == .HEAD
        client.started = self.now
        client.sendingBody = facts.hasBody
        switch head.method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE: client.idempotent = true
        default: client.idempotent = false
        }
        client.replayable = client.idempotent && !facts.hasBody
        // (A stream's exchange is one request: it ends after its response.)
        client.closeAfterResponse = !facts.isKeepAlive(head.version) || client.peerClosed || client.stream != nil
        client.attempts = 0
        client.replayed = false
        client.forceNewConnection = false
        client.endpoint = nil
        client.accessLog = state.accessLog
        if state.accessLog != nil {
            client.log = LogLine(
                method: head.method,
                uri: head.uri,
                version: head.version,
                host: facts.host,
                client: client.clientAddress
            )
            client.log?.entry.service = route.service
            if client.stream != nil { client.log?.entry.httpVersion = "HTTP/2" }
        }
        // As HTTP1Encoder writes a bodiless request with its fields as bytes, the proxy's
        // forwarding fields after the client's.
        var request = client.upstreamRequest
        client.upstreamRequest = ByteBuffer()
        request.rewind()
        self.provide(&request)
        Self.writeRequestHead(head, fields: fields, host: facts.host, client: client, into: &request)
        client.upstreamRequest = request
        client.target = target
        client.firstEndpoint = target.next
        target.next = (target.next &+ 1) % pool.endpoints.count
        client.order = self.health.order(
            pool.endpoints,
            start: client.firstEndpoint,
            balancing: route.loadBalancing,
            preferred: nil,
            now: NIODeadline.uptimeNanoseconds(self.now),
            down: pool.healthCheck == nil ? [] : self.core.healthChecker.down
        )
        client.encoder = HTTP1Encoder()
        self.clearDeadline(client)
        self.connectNext(client)
        // The request was read whole: its buffer serves other reads meanwhile.
        if !client.sendingBody, self.isOpen(client) { self.park(&client.input) }
    }

    /// The head sent upstream: the request line, the client's field lines, then
    /// ForwardingContext.append's lines (their constant parts made once per listener), in one
    /// write into space reserved once (a write per piece cost a uniqueness and an exclusivity
    /// check each, a dozen per request).
    private static func writeRequestHead(
        _ head: HTTPRequestLine,
        fields: ByteBuffer,
        host: String?,
        client: Client,
        into request: inout ByteBuffer
    ) {
        let method = head.method.rawValue
        let address = client.clientAddress
        let origin = client.origin
        var size = method.utf8.count + 1 + head.uri.utf8.count + 11 + fields.readableBytes
        size += 17 + 2 * address.utf8.count + origin.afterAddress.readableBytes + origin.afterHost.readableBytes + 4
        if let host { size += 20 + host.utf8.count }
        request.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var writer = BytesWriter(out)
            writer.write(method)
            writer.write(" ")
            writer.write(head.uri)
            writer.write(head.version.minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n")
            writer.write(fields)
            writer.write("x-forwarded-for: ")
            writer.write(address)
            writer.write(origin.afterAddress)
            if let host {
                writer.write("x-forwarded-host: ")
                writer.write(host)
                writer.write("\r\n")
            }
            writer.write(origin.afterHost)
            writer.write(address)
            writer.write("\r\n\r\n")
            return writer.count
        }
    }

    /// Whether the lane applies all of `route`'s policy: none that acts per request (source
    /// ranges, client certificates, rate limits, redirects, rewrites, auth, affinity), or the
    /// engine must serve its requests. (ssl-redirect redirects plain HTTP only: over TLS such
    /// a route is served.)
    private static func servesPolicy(of route: HTTPRoute, overTLS: Bool) -> Bool {
        route.allowedSources.isEmpty && route.clientCertificate == nil && route.rateLimit == nil
            && route.appRoot == nil && route.permanentRedirect == nil && (!route.sslRedirect || overTLS)
            && route.forwardAuth == nil && route.affinity == nil && route.rewrite == nil
    }

    /// Whether requests for `serverName` (a TLS client's SNI) may be the lane's: no when
    /// every route of that host needs the engine (its policy, or an HTTP/2 or TLS upstream).
    /// The engine then gets the connection from its ClientHello on, instead of the lane
    /// terminating TLS only to relay every request. (The Host of a request can differ from the
    /// SNI: then either way serves it, the lane by relaying.) Without SNI (a client that
    /// connects by address) nothing says which host will be asked for: the lane's.
    private static func mayServe(serverName: String?, in state: EngineState) -> Bool {
        guard let serverName else { return true }
        let targets = state.routes.targets(forHost: Substring(serverName))
        return targets.contains { route in
            guard Self.servesPolicy(of: route, overTLS: true), let pool = state.pools[route.pool] else {
                return false
            }
            return !pool.http2 && pool.tls == nil
        }
    }

    /// The lane's state for `route`'s pool, when the lane can send requests there: a plain
    /// HTTP/1.1 pool with endpoints. Without a lookup when the route is the last one's.
    private func target(of route: HTTPRoute, in state: EngineState) -> PoolTarget? {
        if self.targetsState !== state {
            self.targetsState = state
            self.targets = [:]
            self.lastRoute = nil
            self.lastTarget = nil
        }
        if self.lastRoute === route, let target = self.lastTarget { return target }
        let target: PoolTarget
        if let known = self.targets[route.pool] {
            target = known
        } else {
            guard let pool = state.pools[route.pool], !pool.endpoints.isEmpty, !pool.http2, pool.tls == nil,
                pool.endpoints.allSatisfy({ (try? SocketAddress(ipAddress: $0.host, port: $0.port)) != nil })
            else { return nil }
            target = PoolTarget(
                pool: pool,
                idle: pool.endpoints.map { endpoint in
                    if let idle = self.idle[endpoint] { return idle }
                    let idle = IdleConnections()
                    self.idle[endpoint] = idle
                    return idle
                }
            )
            self.targets[route.pool] = target
        }
        self.lastRoute = route
        self.lastTarget = target
        return target
    }

    // MARK: Request bodies

    /// Moves the request body on while the upstream takes it: what the input holds, then more
    /// from the socket. A loop, not recursion, however long the body.
    private func sendBody(_ client: Client) {
        while client.sendingBody, let upstream = client.upstream, !upstream.connecting {
            var moved = false
            // All the input holds (bounded by the reads: more is read only once the upstream
            // took everything), so the body's end is never left behind in the decoder.
            while client.sendingBody, let part = try? client.decoder.next(&client.input) {
                switch part {
                case .body(let bytes): upstream.output.writeImmutableBuffer(bytes)
                case .end: client.sendingBody = false
                case .head: break  // (not inside a body)
                }
                moved = true
            }
            if moved, let route = client.route {
                // As the engine: each part moves the deadline, the send timeout until the body
                // ended or the response began, then the read timeout.
                self.setDeadline(client, in: Self.nanoseconds(self.exchangeTimeout(client, route)))
            }
            if client.sendingBody, client.peerClosed {
                // The client closed before its body ended: it never will (logged as 499).
                return self.closeClient(client)
            }
            guard self.flushUpstream(upstream) else { return }
            if let stream = client.stream { self.giveBackWindow(stream) }
            // More from the socket once the upstream took everything.
            guard client.sendingBody, client.readable, upstream.output.readableBytes == 0 else { return }
            if !self.receive(client, limit: Self.inputLimit) {
                client.peerClosed = true
                return self.closeClient(client)
            }
        }
    }

    /// The engine's timeout for the exchange's next step: the send timeout while the body is
    /// sent and no response came, else the read timeout.
    private func exchangeTimeout(_ client: Client, _ route: HTTPRoute) -> TimeAmount {
        client.sendingBody && client.state == .waiting ? route.sendTimeout : route.readTimeout
    }

    /// Reads the rest of the request body from what is buffered, for a local answer; false when
    /// part of it is still to come (the connection then closes after the answer, as the
    /// engine's does when the request did not end).
    private func discardBody(_ client: Client) -> Bool {
        while client.sendingBody, let part = try? client.decoder.next(&client.input) {
            if case .end = part { client.sendingBody = false }
        }
        return !client.sendingBody
    }

    // MARK: Spare buffers

    /// Gives `buffer` a spare's storage when it has none (it is about to be read into).
    private func provide(_ buffer: inout ByteBuffer) {
        guard buffer.capacity == 0, let spare = self.spares.popLast() else { return }
        buffer = spare
        if self.spares.count < self.sparesLow { self.sparesLow = self.spares.count }
    }

    /// Frees the spares that were not taken since the last trim (all of them once the lane is
    /// idle), the longest unused first.
    private func trimSpares() {
        let unused = min(self.sparesLow, self.spares.count)
        if unused > 0 { self.spares.removeFirst(unused) }
        self.sparesLow = self.spares.count
        self.nextTrim = self.now &+ Self.trimInterval
    }

    /// Spare buffers the lane holds now (for tests).
    func spareCount() async -> Int {
        await withCheckedContinuation { continuation in
            if !self.execute({ [self] in continuation.resume(returning: self.spares.count) }) {
                continuation.resume(returning: 0)
            }
        }
    }

    /// Takes an empty buffer's storage back into the spares (or frees it).
    private func park(_ buffer: inout ByteBuffer) {
        guard buffer.capacity > 0, buffer.readableBytes == 0 else { return }
        if buffer.capacity <= Self.spareCapacity, self.spares.count < Self.spareLimit {
            buffer.rewind()
            self.spares.append(buffer)
        }
        buffer = ByteBuffer()
    }

    /// A connection between requests keeps no buffer.
    private func parkBuffers(_ client: Client) {
        guard client.state == .idle else { return }
        self.park(&client.input)
        self.park(&client.output)
        client.upstreamRequest.rewind()  // (kept for retries until the exchange ended)
        self.park(&client.upstreamRequest)
    }

    /// Gives the connection to the engine with the bytes not answered yet. Waits for the
    /// response bytes still unwritten first, so they keep their order.
    private func handOver(_ client: Client) {
        client.state = .handingOver
        guard client.output.readableBytes == 0 else {
            // The client must take what it is owed first, within the idle timeout.
            return self.setDeadline(client, in: Self.nanoseconds(self.limits.idleTimeout))
        }
        if client.tls != nil || client.stream != nil { return self.startRelay(client) }
        self.release(client)
        self.shared.withLockedValue { $0.handedOver += 1 }
        self.handoff(client.descriptor, client.listener, client.input, .accepted(nil))
    }

    /// Forgets a client whose descriptor is being closed or handed over.
    private func release(_ client: Client) {
        self.clearDeadline(client)
        guard client.stream == nil else { return }
        self.clients[Int(client.descriptor)] = nil
        _ = epoll_ctl(self.epoll, EPOLL_CTL_DEL, client.descriptor, nil)
        if client.counted {
            client.counted = false
            self.core.openConnections.decrement()
            self.shared.withLockedValue { $0.clients -= 1 }
        }
    }

    private func closeClient(_ client: Client) {
        if let stream = client.stream {
            // A stream's exchange: the stream ends (reset, unless its response is out).
            guard stream.exchange === client else { return }
            if case .discarding = stream.state { stream.resetCode = stream.endWritten ? .noError : .cancel }
            return self.endStream(stream)
        }
        guard self.clients[Int(client.descriptor)] === client else { return }
        if let connection = client.http2 {
            client.http2 = nil
            for stream in connection.streams.values {
                stream.resetCode = nil
                if let exchange = stream.exchange {
                    stream.exchange = nil
                    self.closeExchange(exchange)
                }
            }
            connection.streams = [:]
            connection.blocked = []
            connection.pendingHeads = []
        }
        self.abandonExchange(client)
        self.release(client)
        client.tls = nil  // (frees the TLS connection before the descriptor closes)
        Glibc.close(client.descriptor)
    }

    /// Ends what the client's exchange holds as it closes: its log line (499 when gone before
    /// the response began, as the engine logs it), its upstream connection (not reused), its
    /// endpoint count, its relay.
    private func abandonExchange(_ client: Client) {
        if client.log != nil {
            if client.state == .waiting { client.log?.entry.status = 499 }
            self.writeLogEntry(client)
        }
        if let upstream = client.upstream {
            client.upstream = nil
            upstream.client = nil
            self.closeUpstream(upstream)
        }
        self.uncountEndpoint(client)
        self.endRelay(client)
    }

    /// Writes the client's pending output; false when the client was closed or handed over.
    @discardableResult
    private func flushClient(_ client: Client, resume: Bool = true) -> Bool {
        if let stream = client.stream {
            // A stream's exchange: its output becomes frames of the connection.
            guard stream.exchange === client, self.convertResponse(client, stream) else { return false }
            guard client.output.readableBytes == 0, stream.held.readableBytes == 0, stream.heldHead == nil else {
                return stream.exchange === client
            }
        } else {
            guard client.output.readableBytes > 0 else { return true }
            guard client.tls?.flush(&client.output) ?? Self.flush(client.descriptor, &client.output) else {
                self.closeClient(client)
                return false
            }
            guard client.output.readableBytes == 0 else { return true }
        }
        switch client.state {
        case .handingOver:
            self.handOver(client)
            return false
        case .closing:
            self.beginLinger(client)
        case .responding, .waiting:
            // Room again: read on from the upstream (unless called from that loop).
            if resume, let upstream = client.upstream, upstream.readable { self.readUpstream(upstream) }
        case .idle:
            self.parkBuffers(client)
        case .http2:
            // Room again: streams that waited for the connection's output go on.
            if let connection = client.http2 { self.resumeBlocked(connection) }
            if client.output.readableBytes == 0 { self.park(&client.output) }
            if resume, client.readable, client.output.readableBytes < Self.outputLimit { self.readHTTP2(client) }
        default:
            break
        }
        return self.isOpen(client)
    }

    /// The last response is out: shut the write side and read until the client closes (so
    /// unread requests do not turn the close into a reset that could cut the response).
    private func beginLinger(_ client: Client) {
        if let stream = client.stream {
            // A stream's exchange: its response is out.
            guard stream.exchange === client else { return }
            if !stream.responseEnded, client.output.readableBytes == 0, let connection = stream.connection.http2,
                case .end? = stream.decoder.connectionClosed()
            {
                // A response delimited by the close (an HTTP/1.0 upstream's): it ended here.
                stream.responseEnded = true
                self.writeHeld(stream, connection, stream.connection)
            }
            guard stream.endWritten else {
                client.state = .closing
                return
            }
            return self.finishStream(client, stream)
        }
        guard client.output.readableBytes == 0 else {
            client.state = .closing
            return
        }
        if client.peerClosed { return self.closeClient(client) }
        client.state = .lingering
        client.tls?.shutdown()
        _ = Glibc.shutdown(client.descriptor, CInt(SHUT_WR))
        self.setDeadline(client, in: 2_000_000_000)
        if client.readable { self.readClient(client) }
    }

    private func clientTimedOut(_ client: Client) {
        switch client.state {
        case .new, .idle, .lingering, .hello, .handshaking, .relaying:
            self.closeClient(client)
        case .http2:
            // Idle (no stream) for the idle timeout: GOAWAY, then the close.
            if let connection = client.http2 { self.closeHTTP2Gracefully(client, connection) }
        case .readingHead:
            client.answeringHEAD = false  // (the previous request's)
            self.metrics.countRequest(nil, status: .requestTimeout)
            self.respondLocally(client, .requestTimeout, LocalAnswer.headerTimeout, close: true)
        case .waiting:
            let service = client.route?.service ?? ""
            self.metrics.countUpstreamError(service: service, reason: "timeout")
            if let upstream = client.upstream {
                client.upstream = nil
                upstream.client = nil
                self.closeUpstream(upstream)
            }
            self.uncountEndpoint(client)
            self.metrics.countRequest(client.route, status: .gatewayTimeout)
            let sending = client.sendingBody
            self.respondLocally(
                client,
                .gatewayTimeout,
                LocalAnswer.timedOut(service: service, which: sending ? "proxy-send-timeout" : "proxy-read-timeout"),
                close: client.closeAfterResponse || sending
            )
        case .responding, .handingOver, .closing:
            // (Output the client does not take, in the last two.)
            self.closeClient(client)
        }
    }

    /// Answers with a small text body, as the engine's `respondLocally` does, then waits for
    /// the next request or closes.
    private func respondLocally(_ client: Client, _ status: HTTPResponseStatus, _ message: String, close: Bool) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(3)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(message.utf8.count))
        if close { headers.add(name: "connection", value: "close") }
        var encoder = HTTP1Encoder()
        self.provide(&client.output)
        encoder.writeResponseHead(
            HTTPResponseHead(version: .http1_1, status: status, headers: headers),
            answeringHEAD: client.answeringHEAD,
            into: &client.output
        )
        if !client.answeringHEAD { client.output.writeString(message) }
        if client.log != nil {
            client.log?.entry.status = Int(status.code)
            client.log?.entry.bytesSent = message.utf8.count
            self.writeLogEntry(client)
        }
        self.shared.withLockedValue { $0.served += 1 }
        client.route = nil
        if close {
            client.state = .closing
            if self.flushClient(client), client.state == .closing { self.beginLinger(client) }
        } else {
            self.exchangeEnded(client)
            if self.isOpen(client) { self.flushClient(client) }
        }
    }

    // MARK: TLS clients

    /// A ClientHello fits one record (16 KiB) and its header.
    private static let helloLimit = 16_389

    /// Peeks at the ClientHello and decides who terminates TLS: the engine when the client
    /// offers `h2` (and the listener does), when client certificates are asked for its server
    /// name, when the chosen certificate has no lane context, or when it is not a ClientHello
    /// the lane reads (the engine's TLS handler answers those); else the lane.
    private func readHello(_ client: Client) {
        guard let server = client.tlsServer else { return self.closeClient(client) }
        let descriptor = client.descriptor
        let parsed: ClientHelloSummary.Parse? = withUnsafeTemporaryAllocation(
            byteCount: Self.helloLimit,
            alignment: 16
        ) { buffer in
            let count = recv(descriptor, buffer.baseAddress, buffer.count, CInt(MSG_PEEK))
            if count < 0 { return errno == EAGAIN || errno == EINTR ? .incomplete : nil }
            if count == 0 { return nil }
            return ClientHelloSummary.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        switch parsed {
        case nil:
            self.closeClient(client)  // closed (or failed) before a whole ClientHello
        case .incomplete?:
            // The rest comes with a later edge, within the header timeout.
            client.readable = false
            if client.hangup { self.closeClient(client) }
        case .unreadable?:
            self.handOverTLS(client, server)
        case .hello(let hello)?:
            let state = self.core.state
            let http2 = server.http2 && hello.applicationProtocols.contains("h2")
            guard !http2 || Self.mayServeHTTP2(serverName: hello.serverName, overTLS: true, in: state),
                state.clientAuth.lookup(hello.serverName) == nil,
                Self.mayServe(serverName: hello.serverName, in: state),
                let context = state.certificates?.select(serverName: hello.serverName).lane,
                let tls = context.connection(on: descriptor)
            else { return self.handOverTLS(client, server) }
            if http2 { tls.allowHTTP2() }
            client.tls = tls
            client.tlsServer = nil
            client.state = .handshaking
            self.continueHandshake(client)
        }
    }

    /// Gives a TLS client whose ClientHello was only peeked at to the engine.
    private func handOverTLS(_ client: Client, _ server: TLSServer) {
        self.release(client)
        self.shared.withLockedValue { $0.handedOver += 1 }
        self.handoff(client.descriptor, client.listener, ByteBuffer(), .accepted(server))
    }

    private func continueHandshake(_ client: Client) {
        guard let tls = client.tls else { return }
        switch tls.handshake() {
        case .blocked:
            return  // (within the header timeout, which runs from the accept)
        case .failed:
            self.core.handshakes.count(succeeded: false)
            self.closeClient(client)
        case .done:
            self.core.handshakes.count(succeeded: true)
            self.shared.withLockedValue { $0.tlsHandshakes += 1 }
            client.state = .new
            client.mayBeHTTP2 = false
            // The request may have come with the client's Finished (already decrypted and
            // buffered by TLS, so no edge would tell).
            client.readable = true
            if tls.negotiatedHTTP2 { return self.startHTTP2(client) }
            self.readClient(client)
        }
    }

    /// Hands a TLS client's connection to the engine in the middle (a request the lane does not
    /// serve): the lane keeps the TLS connection and relays its decrypted bytes, the bytes not
    /// answered yet first, over a socket pair whose other end the engine serves as this
    /// client's HTTP/1.1 connection.
    private func startRelay(_ client: Client) {
        var pair: [CInt] = [-1, -1]
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &pair) == 0 else {
            self.logger.warning("fast lane: no socket pair to relay a TLS connection", metadata: ["errno": "\(errno)"])
            return self.closeClient(client)
        }
        self.clearDeadline(client)
        client.state = .relaying
        // The engine counts the connection from here (its end of the pair is a channel).
        let counted = client.counted
        if counted {
            client.counted = false
            self.core.openConnections.decrement()
        }
        let stream = client.stream != nil
        self.shared.withLockedValue {
            if counted { $0.clients -= 1 }
            if stream { $0.relayedStreams += 1 } else { $0.relayed += 1 }
            $0.relays += 1
        }
        let relay = Relay(descriptor: pair[0], generation: self.nextGeneration(), client: client)
        client.relay = relay
        let index = Int(relay.descriptor)
        if index >= self.relays.count {
            self.relays.append(contentsOf: repeatElement(nil, count: index + 1 - self.relays.count))
        }
        self.relays[index] = relay
        _ = portico_epoll_ctl(
            self.epoll,
            EPOLL_CTL_ADD,
            relay.descriptor,
            EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue,
            Self.tag(.relay, relay.descriptor, generation: relay.generation)
        )
        self.handoff(
            pair[1],
            client.listener,
            ByteBuffer(),
            .decrypted(
                client: Self.socketName(client.descriptor, getpeername),
                localPort: Self.socketName(client.descriptor, getsockname)?.port,
                overTLS: client.tls != nil || client.stream?.connection.tls != nil
            )
        )
        self.pumpRelay(relay)
    }

    /// The peer's (`getpeername`) or the local (`getsockname`) address of a socket.
    private static func socketName(
        _ descriptor: CInt,
        _ call: (CInt, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?) -> CInt
    ) -> SocketAddress? {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(descriptor, $0, &length) }
        }
        return result == 0 ? Self.address(storage) : nil
    }

    private func relayEvent(_ relay: Relay, _ mask: UInt32) {
        if mask & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            relay.readable = true
        }
        if mask & (EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { relay.hangup = true }
        self.pumpRelay(relay)
    }

    /// Moves bytes both ways between a relayed client and the engine until neither side can
    /// take or give more. Each direction holds one buffer: the next read waits until the
    /// other side took it all.
    private func pumpRelay(_ relay: Relay) {
        let client = relay.client
        guard client.relay === relay else { return }
        if let stream = client.stream { return self.pumpStreamRelay(relay, client, stream) }
        guard let tls = client.tls else { return }
        var moved = true
        var delivered = false
        while moved {
            moved = false
            // Client -> engine.
            if client.input.readableBytes > 0 { moved = self.writeRelay(relay, &client.input) }
            if client.input.readableBytes == 0, client.readable, !client.peerClosed {
                self.provide(&client.input)
                var drained = false
                let open = tls.read(into: &client.input, limit: Self.inputLimit, drained: &drained)
                if drained { client.readable = false }
                if !open {
                    client.peerClosed = true
                    client.readable = false
                }
                moved = moved || client.input.readableBytes > 0
            }
            // Engine -> client.
            if client.output.readableBytes > 0 {
                let before = client.output.readableBytes
                guard tls.flush(&client.output) else { return self.closeClient(client) }
                delivered = delivered || client.output.readableBytes < before
                moved = moved || client.output.readableBytes < before
            }
            if client.output.readableBytes == 0, relay.readable, !relay.atEnd {
                self.readRelay(relay, into: &client.output, limit: Self.outputLimit)
                moved = moved || client.output.readableBytes > 0
            }
        }
        if client.peerClosed, client.input.readableBytes == 0, !relay.shutDown {
            // The client is done sending, and so is the engine's side of the pair.
            relay.shutDown = true
            _ = Glibc.shutdown(relay.descriptor, CInt(SHUT_WR))
        }
        if relay.atEnd, client.output.readableBytes == 0 {
            // The engine closed the connection and the client has everything: closed as the
            // lane closes its own (close_notify, half-close, reading what still comes).
            self.endRelay(client)
            self.beginLinger(client)
        } else if client.output.readableBytes > 0 || relay.atEnd || relay.hangup || relay.engineStopped
            || client.peerClosed
        {
            // Output the client does not take, or one side done: the idle timeout, moved only
            // when the client takes bytes (not when it merely sends some). Otherwise the
            // engine's own timeouts govern the connection.
            if client.list == nil || delivered {
                self.setDeadline(client, in: Self.nanoseconds(self.limits.idleTimeout))
            }
        } else if client.list != nil {
            self.clearDeadline(client)
        }
    }

    /// Writes `bytes` to the engine's end of a relay; true when some went. Once the engine
    /// closed its end (a 413 while the upload goes on, say), what the client still sends is
    /// dropped, and the engine's answer still goes out.
    private func writeRelay(_ relay: Relay, _ bytes: inout ByteBuffer) -> Bool {
        let before = bytes.readableBytes
        if relay.engineStopped || !Self.flush(relay.descriptor, &bytes) {
            relay.engineStopped = true
            bytes.clear()
        }
        return bytes.readableBytes < before
    }

    /// Reads what the engine wrote to a relay into `buffer` (up to `limit` bytes buffered).
    private func readRelay(_ relay: Relay, into buffer: inout ByteBuffer, limit: Int) {
        self.provide(&buffer)
        var drained = false
        let open = Self.readAll(
            relay.descriptor,
            into: &buffer,
            limit: limit,
            hangup: relay.hangup,
            drained: &drained
        )
        if drained { relay.readable = false }
        if !open {
            relay.atEnd = true
            relay.readable = false
        }
    }

    /// Closes the client's relay, if it has one.
    private func endRelay(_ client: Client) {
        guard let relay = client.relay else { return }
        client.relay = nil
        self.relays[Int(relay.descriptor)] = nil
        Glibc.close(relay.descriptor)  // (which also leaves the epoll set)
        self.shared.withLockedValue { $0.relays -= 1 }
    }

    // MARK: Upstreams

    private func connectNext(_ client: Client) {
        guard let route = client.route, let target = client.target else { return }
        let count = target.pool.endpoints.count
        let index =
            client.order.map { $0[client.attempts % $0.count] } ?? (client.firstEndpoint + client.attempts) % count
        let endpoint = target.pool.endpoints[index]
        let idle = target.idle[index]
        client.attempts += 1
        client.endpoint = endpoint
        if route.loadBalancing == .leastRequests {
            self.health.started(endpoint)
            client.countedEndpoint = endpoint
        }
        if !client.forceNewConnection, let upstream = idle.connections.popLast() {
            self.clearDeadline(upstream)
            return self.attach(client, upstream, route: route)
        }
        guard let upstream = self.connect(endpoint, idle: idle) else {
            return self.connectFailed(client, endpoint: endpoint)
        }
        if upstream.connecting {
            self.setDeadline(upstream, in: Self.nanoseconds(route.connectTimeout))
        } else {
            self.health.connectSucceeded(endpoint)
        }
        self.attach(client, upstream, route: route)
    }

    private func connect(_ endpoint: UpstreamEndpoint, idle: IdleConnections) -> Upstream? {
        let address: SocketAddress
        if let known = self.addresses[endpoint] {
            address = known
        } else {
            guard let parsed = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) else { return nil }
            self.addresses[endpoint] = parsed
            address = parsed
        }
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let descriptor = socket(
            family,
            CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue),
            0
        )
        guard descriptor >= 0 else { return nil }
        var one: CInt = 1
        _ = setsockopt(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        let result = address.withSockAddr { pointer, length in Glibc.connect(descriptor, pointer, socklen_t(length)) }
        if result < 0 && errno != EINPROGRESS {
            Glibc.close(descriptor)
            return nil
        }
        let upstream = Upstream(
            descriptor: descriptor,
            generation: self.nextGeneration(),
            endpoint: endpoint,
            idle: idle
        )
        upstream.connecting = result < 0
        self.store(upstream)
        _ = portico_epoll_ctl(
            self.epoll,
            EPOLL_CTL_ADD,
            descriptor,
            EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue,
            Self.tag(.upstream, descriptor, generation: upstream.generation)
        )
        return upstream
    }

    private func attach(_ client: Client, _ upstream: Upstream, route: HTTPRoute) {
        client.upstream = upstream
        upstream.client = client
        upstream.reusable = false
        upstream.decoder.answeringHEAD = client.answeringHEAD
        self.provide(&upstream.output)
        upstream.output.writeImmutableBuffer(client.upstreamRequest)
        if upstream.connecting {
            self.clearDeadline(client)  // the connect timeout runs on the upstream
        } else {
            self.setDeadline(client, in: Self.nanoseconds(self.exchangeTimeout(client, route)))
            guard self.flushUpstream(upstream) else { return }
            if client.sendingBody { self.sendBody(client) }
        }
    }

    /// A connection attempt failed (refused, timed out).
    private func connectionFailed(_ upstream: Upstream) {
        let client = upstream.client
        upstream.client = nil
        self.closeUpstream(upstream)
        guard let client else { return }
        client.upstream = nil
        self.connectFailed(client, endpoint: upstream.endpoint)
    }

    /// Connecting failed: the endpoint is ejected for a while; the next endpoint is tried
    /// (bounded), then the engine's 502.
    private func connectFailed(_ client: Client, endpoint: UpstreamEndpoint) {
        self.health.connectFailed(
            endpoint,
            now: NIODeadline.uptimeNanoseconds(self.now),
            base: self.limits.ejectionTime
        )
        self.uncountEndpoint(client)
        if client.idempotent,
            client.attempts < min(self.limits.maxConnectAttempts, client.target?.pool.endpoints.count ?? 0)
        {
            return self.connectNext(client)
        }
        let service = client.route?.service ?? ""
        self.metrics.countUpstreamError(service: service, reason: "connect")
        self.badGateway(
            client,
            LocalAnswer.connectFailed(service: service, endpoint: endpoint),
            close: client.closeAfterResponse || !self.discardBody(client)
        )
    }

    private func uncountEndpoint(_ client: Client) {
        if let endpoint = client.countedEndpoint {
            client.countedEndpoint = nil
            self.health.finished(endpoint)
        }
    }

    private func upstreamEvent(_ upstream: Upstream, _ mask: UInt32) {
        if upstream.connecting, mask & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            var error: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            _ = getsockopt(upstream.descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 || mask & EPOLLHUP.rawValue != 0 {
                return self.connectionFailed(upstream)
            }
            upstream.connecting = false
            self.health.connectSucceeded(upstream.endpoint)
            if let client = upstream.client, let route = client.route {
                self.setDeadline(client, in: Self.nanoseconds(self.exchangeTimeout(client, route)))
            }
            self.clearDeadline(upstream)
        }
        if mask & EPOLLOUT.rawValue != 0, upstream.output.readableBytes > 0 {
            guard self.flushUpstream(upstream) else { return }
        }
        if mask & EPOLLOUT.rawValue != 0, let client = upstream.client, client.sendingBody,
            upstream.output.readableBytes == 0
        {
            // Room again: the request body moves on.
            self.sendBody(client)
            guard self.upstreams[Int(upstream.descriptor)] === upstream else { return }
        }
        if mask & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            upstream.readable = true
        }
        if mask & (EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { upstream.hangup = true }
        if upstream.readable { self.readUpstream(upstream) }
    }

    @discardableResult
    private func flushUpstream(_ upstream: Upstream) -> Bool {
        guard Self.flush(upstream.descriptor, &upstream.output) else {
            self.upstreamFailed(upstream, failure: nil)
            return false
        }
        return true
    }

    private func readUpstream(_ upstream: Upstream) {
        guard self.upstreams[Int(upstream.descriptor)] === upstream, !upstream.connecting else { return }
        guard let client = upstream.client else {
            // Idle: the upstream closed it (or sent what it must not): it is not reusable.
            return self.closeUpstream(upstream)
        }
        // A loop, not recursion through flushClient: a long download on sockets that keep
        // taking data would otherwise grow the stack with every round.
        // (A stream's exchange reads less, and nothing while the client's window holds its
        // response back: a connection has up to 100 of them.)
        let limit = client.stream == nil ? Self.outputLimit : Self.heldLimit
        while upstream.readable, upstream.client === client, client.output.readableBytes < limit,
            client.stream?.isBlocked != true
        {
            let open = self.receive(
                upstream.descriptor,
                into: &upstream.input,
                limit: limit,
                hangup: upstream.hangup,
                readable: &upstream.readable
            )
            if !open {
                // The end of the stream: the connection cannot carry another request.
                upstream.readable = false
                upstream.atEnd = true
            }
            if let route = client.route {
                self.setDeadline(client, in: Self.nanoseconds(self.exchangeTimeout(client, route)))
            }
            self.decodeResponse(upstream, client)
            if !open, upstream.client === client {  // (not finished, or failed, on the way)
                if let end = upstream.decoder.connectionClosed() {
                    // A body delimited by the close ended normally.
                    self.responsePart(end, upstream, client)
                } else {
                    self.upstreamFailed(upstream, failure: nil)
                }
            }
            guard self.isOpen(client), self.flushClient(client, resume: false) else {
                return
            }
        }
    }

    private func decodeResponse(_ upstream: Upstream, _ client: Client) {
        while upstream.client === client {
            let part: HTTPClientResponsePart?
            do {
                part = try upstream.decoder.next(&upstream.input, fieldStorage: &self.fieldStorage)
            } catch {
                return self.upstreamFailed(upstream, failure: error)
            }
            guard let part else { return }
            self.responsePart(part, upstream, client)
        }
    }

    private func responsePart(_ part: HTTPClientResponsePart, _ upstream: Upstream, _ client: Client) {
        switch part {
        case .head(var head):
            if head.status.code >= 200 || head.status == .switchingProtocols {
                let service = client.route?.service ?? ""
                self.metrics.countRequest(client.route, status: head.status)
                self.metrics.recordLatency(service: service, nanoseconds: self.now &- client.started)
            }
            if client.sendingBody, let route = client.route {
                // The response began: the read timeout from here on (the send timeout ran).
                self.setDeadline(client, in: Self.nanoseconds(route.readTimeout))
            }
            client.state = .responding
            client.log?.entry.status = Int(head.status.code)
            let keepAlive =
                upstream.decoder.removedHopByHop?.isKeepAlive(head.version)
                ?? head.headers.removeHopByHopFromResponse(keepUpgrade: false, version: head.version)
            upstream.reusable = keepAlive && head.status != .switchingProtocols
            if client.closeAfterResponse { head.headers.add(name: "connection", value: "close") }
            self.provide(&client.output)
            if let raw = upstream.decoder.rawFields {
                client.encoder.writeResponseHead(
                    head,
                    answeringHEAD: client.answeringHEAD,
                    raw: raw,
                    into: &client.output
                )
                upstream.decoder.dropRawFields()
            } else {
                client.encoder.writeResponseHead(head, answeringHEAD: client.answeringHEAD, into: &client.output)
            }
        case .body(var body):
            guard client.encoder.writesBody else { return }
            client.log?.entry.bytesSent += body.readableBytes
            if let prefix = client.encoder.chunkPrefix(for: body.readableBytes, allocator: self.allocator) {
                client.output.writeImmutableBuffer(prefix)
            }
            client.output.writeBuffer(&body)
        case .end(let trailers):
            if client.sendingBody {
                // Answered before the whole request arrived (the body went on meanwhile, as in
                // the engine): neither side can be reused; the rest is read and dropped while
                // the connection closes.
                client.sendingBody = false
                client.closeAfterResponse = true
                upstream.reusable = false
            }
            if let end = client.encoder.end(trailers: trailers, allocator: self.allocator) {
                client.output.writeImmutableBuffer(end)
            }
            client.upstream = nil
            upstream.client = nil
            self.uncountEndpoint(client)
            self.releaseUpstream(upstream)
            if client.log != nil { self.writeLogEntry(client) }
            client.route = nil
            self.shared.withLockedValue { $0.served += 1 }
            self.exchangeEnded(client)
        }
    }

    /// Writes the exchange's access log line, once.
    private func writeLogEntry(_ client: Client) {
        guard var entry = client.log?.entry else { return }
        client.log = nil
        entry.upstream = client.endpoint?.description ?? ""
        client.accessLog?.record(entry)
        client.accessLog = nil
    }

    /// The response is complete (in `output`): the next request, or the close.
    private func exchangeEnded(_ client: Client) {
        if client.closeAfterResponse || self.draining {
            client.state = .closing
            self.setDeadline(client, in: Self.nanoseconds(self.limits.idleTimeout))
            if self.flushClient(client), client.state == .closing { self.beginLinger(client) }
            return
        }
        client.state = .idle
        self.setDeadline(client, in: Self.nanoseconds(self.limits.idleTimeout))
        if client.input.readableBytes > 0 {
            // Pipelined: answered in order, after this response (already in `output`).
            self.serveNext(client)
        } else if client.readable {
            self.readClient(client)
        } else if client.peerClosed {
            self.flushClient(client)
            self.closeClient(client)
        }
    }

    private static let burstGrace: UInt64 = 1_000_000_000

    private func releaseUpstream(_ upstream: Upstream) {
        upstream.reused = true
        let limits = self.limits
        guard upstream.reusable, !upstream.atEnd, !upstream.hangup, upstream.decoder.isAtMessageBoundary,
            upstream.input.readableBytes == 0,
            !upstream.connecting, upstream.output.readableBytes == 0
        else { return self.closeUpstream(upstream) }
        // As the engine: connections above the idle limit stay for the next burst, but only
        // for a second (a burst of HTTP/2 streams needs one connection each).
        var timeout = Self.nanoseconds(limits.upstreamIdleTimeout)
        if upstream.idle.connections.count >= limits.maxIdleUpstreamConnectionsPerEndpoint {
            timeout = min(timeout, Self.burstGrace)
        }
        upstream.idle.connections.append(upstream)
        self.setDeadline(upstream, in: timeout)
        self.park(&upstream.input)
        self.park(&upstream.output)
    }

    /// The upstream connection failed or closed before its response ended (`failure`: the
    /// response could not be parsed). As the engine: a connection taken from the idle pool
    /// may have gone stale, so the request is sent once more on a new one; otherwise 502.
    private func upstreamFailed(_ upstream: Upstream, failure: (any Error)?) {
        let client = upstream.client
        upstream.client = nil
        self.closeUpstream(upstream)
        guard let client else { return }
        client.upstream = nil
        self.uncountEndpoint(client)
        guard client.state == .waiting else {
            // Part of the response went out: the client cannot be told otherwise.
            self.flushClient(client, resume: false)
            return self.closeClient(client)
        }
        if upstream.reused, client.replayable, !client.replayed {
            client.replayed = true
            client.forceNewConnection = true
            client.attempts = max(0, client.attempts - 1)
            return self.connectNext(client)
        }
        let service = client.route?.service ?? ""
        if let failure = failure as? HTTP1ParseError {
            self.metrics.countUpstreamError(service: service, reason: "invalid_response")
            self.badGateway(
                client,
                LocalAnswer.invalidResponse(service: service, failure: failure),
                close: true
            )
        } else {
            self.metrics.countUpstreamError(service: service, reason: "closed")
            self.badGateway(client, LocalAnswer.upstreamClosed(service: service), close: true)
        }
    }

    /// The engine's 502: counted for the route's service, then answered.
    private func badGateway(_ client: Client, _ message: String, close: Bool) {
        self.metrics.countRequest(client.route, status: .badGateway)
        self.respondLocally(client, .badGateway, message, close: close)
    }

    private func upstreamTimedOut(_ upstream: Upstream) {
        if upstream.connecting {
            self.connectionFailed(upstream)
        } else if upstream.client == nil {
            self.closeUpstream(upstream)  // idle too long
        }
    }

    private func closeUpstream(_ upstream: Upstream) {
        guard self.upstreams[Int(upstream.descriptor)] === upstream else { return }
        self.clearDeadline(upstream)
        self.upstreams[Int(upstream.descriptor)] = nil
        if upstream.client == nil, let index = upstream.idle.connections.firstIndex(where: { $0 === upstream }) {
            upstream.idle.connections.remove(at: index)
        }
        Glibc.close(upstream.descriptor)
    }
}

// MARK: - HTTP/2

/// HTTP/2 connections on the lane (LaneHTTP2.swift has the frame layer): each stream's
/// exchange is a ``HTTPFastLane/Client`` without a socket of its own, served by the same
/// code as an HTTP/1.1 request: its input is the request written as HTTP/1.1, its output
/// the HTTP/1.1 response, which ``convertResponse(_:_:)`` turns into HEADERS and DATA. A stream
/// the lane does not serve goes, as HTTP/1.1, to the engine over a socket pair (as a TLS
/// connection's requests do): the engine's answers (404, redirects, auth...) are the reference.
extension HTTPFastLane {
    /// Whether a client's connection is still the lane's: a stream's exchange while its stream
    /// runs it, a connection while it is in the table.
    fileprivate func isOpen(_ client: Client) -> Bool {
        if let stream = client.stream { return stream.exchange === client }
        return self.clients[Int(client.descriptor)] === client
    }

    /// Whether the lane takes HTTP/2 connections for `serverName` (nil: plain h2c, or TLS
    /// without SNI, which may ask for any host): only when every route they may reach is one
    /// the lane serves (no per-request policy, a plain HTTP/1.1 pool). A policy such as
    /// limit-connections or auth counts a client's requests where they meet, and the engine
    /// sees an HTTP/2 connection's streams together only when it has the connection; so do
    /// gRPC upstreams, which need HTTP/2 both ways. (Requests the lane still does not serve,
    /// a Host no route matches or a pool without endpoints, go to the engine one by one.)
    fileprivate static func mayServeHTTP2(serverName: String?, overTLS: Bool, in state: EngineState) -> Bool {
        var routes: [HTTPRoute]
        if let serverName {
            routes = state.routes.targets(forHost: Substring(serverName))
        } else {
            routes = state.routes.rules.map(\.target)
            if let fallback = state.routes.defaultTarget { routes.append(fallback) }
        }
        return routes.allSatisfy { route in
            guard Self.servesPolicy(of: route, overTLS: overTLS), let pool = state.pools[route.pool] else {
                return false
            }
            return !pool.http2 && pool.tls == nil
        }
    }

    /// The client speaks HTTP/2 from here (ALPN h2, or the h2c preface in `input`).
    fileprivate func startHTTP2(_ client: Client) {
        let limits = self.core.state.limits
        self.limits = limits
        let connection = LaneHTTP2Connection(
            maxConcurrentStreams: limits.maxConcurrentStreams,
            maxHeaderListSize: limits.maxHeaderSectionSize,
            overTLS: client.tls != nil
        )
        client.http2 = connection
        client.mayBeHTTP2 = false
        client.state = .http2
        self.shared.withLockedValue { $0.http2Connections += 1 }
        self.provide(&client.output)
        connection.start(into: &client.output, maxHeaderListSize: limits.maxHeaderSectionSize)
        self.setDeadline(client, in: Self.nanoseconds(limits.idleTimeout))
        self.queueFlush(client)
        self.readHTTP2(client)
    }

    /// Flushes the connection's output once the events of this turn are handled (the frames
    /// of many streams in one write).
    fileprivate func queueFlush(_ client: Client) {
        guard !client.flushQueued else { return }
        client.flushQueued = true
        self.flushQueue.append(client)
    }

    fileprivate func flushQueued() {
        while let client = self.flushQueue.popLast() {
            client.flushQueued = false
            if self.isOpen(client) { self.flushClient(client) }
        }
    }

    /// Reads and handles the client's frames.
    fileprivate func readHTTP2(_ client: Client) {
        guard let connection = client.http2 else { return }
        while self.isOpen(client), client.http2 === connection, client.state == .http2 {
            // (Not while the client leaves what it is sent unread: PINGs and SETTINGS are
            // answered from what was read, so reading waits for the output to drain.)
            if client.readable, !client.peerClosed, client.input.readableBytes < Self.inputLimit,
                client.output.readableBytes < Self.outputLimit
            {
                if !self.receive(client, limit: Self.inputLimit) {
                    client.peerClosed = true
                    client.readable = false
                }
            }
            do {
                try self.handleFrames(client, connection)
            } catch {
                return self.failHTTP2(client, connection, error)
            }
            guard self.isOpen(client) else { return }
            self.startPendingHeads(connection)
            if client.peerClosed {
                // The client is done: what it is owed goes out, with close_notify (a TLS
                // client that closed cleanly waits for ours).
                guard self.flushClient(client, resume: false) else { return }
                client.tls?.shutdown()
                return self.closeClient(client)
            }
            if !client.readable || client.input.readableBytes >= Self.inputLimit
                || client.output.readableBytes >= Self.outputLimit
            {
                break
            }
        }
        if self.isOpen(client), client.input.readableBytes == 0 { self.park(&client.input) }
    }

    private func handleFrames(_ client: Client, _ connection: LaneHTTP2Connection) throws(LaneHTTP2ConnectionError) {
        if !connection.prefaceRead {
            switch LaneHTTP2Wire.startsWithPreface(client.input) {
            case true?:
                client.input.moveReaderIndex(forwardBy: LaneHTTP2Wire.preface.count)
                connection.prefaceRead = true
            case false?:
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "no connection preface")
            case nil:
                return
            }
        }
        while self.isOpen(client), client.http2 === connection, client.state == .http2,
            let frame = try LaneHTTP2Wire.next(&client.input, maxFrameSize: 16384)
        {
            try self.handleFrame(frame, client, connection)
            if connection.tooManyResets {
                throw LaneHTTP2ConnectionError(code: .enhanceYourCalm, reason: "too many streams reset")
            }
        }
    }

    private func handleFrame(
        _ frame: LaneHTTP2Frame,
        _ client: Client,
        _ connection: LaneHTTP2Connection
    ) throws(LaneHTTP2ConnectionError) {
        if let continuation = connection.continuation,
            frame.kind != .continuation || frame.stream != continuation.stream
        {
            throw LaneHTTP2ConnectionError(code: .protocolError, reason: "a frame inside a header block")
        }
        if !connection.settingsRead, frame.kind != .settings || frame.flags & LaneHTTP2Frame.ack != 0 {
            throw LaneHTTP2ConnectionError(code: .protocolError, reason: "the preface without SETTINGS")
        }
        switch frame.kind {
        case .data:
            guard frame.stream != 0 else { throw LaneHTTP2ConnectionError(code: .protocolError, reason: "DATA on 0") }
            let flowControlled = frame.payload.readableBytes
            guard connection.unacknowledged + flowControlled <= LaneHTTP2Connection.initialWindow else {
                throw LaneHTTP2ConnectionError(code: .flowControlError, reason: "DATA beyond the connection window")
            }
            connection.unacknowledged += flowControlled
            if connection.unacknowledged >= LaneHTTP2Connection.windowUpdateThreshold {
                LaneHTTP2Wire.writeWindowUpdate(stream: 0, increment: connection.unacknowledged, into: &client.output)
                connection.unacknowledged = 0
                self.queueFlush(client)
            }
            guard let data = LaneHTTP2Wire.unpadded(frame) else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "padding beyond the frame")
            }
            guard let stream = connection.streams[frame.stream] else {
                if frame.stream > connection.lastStreamID {
                    throw LaneHTTP2ConnectionError(code: .protocolError, reason: "DATA on an idle stream")
                }
                return  // a stream closed meanwhile (its window was given back above)
            }
            self.receivedData(
                stream,
                data,
                endStream: frame.flags & LaneHTTP2Frame.endStream != 0,
                flowControlled: flowControlled
            )
        case .headers:
            guard frame.stream != 0 else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "HEADERS on 0")
            }
            guard let block = LaneHTTP2Wire.unpadded(frame) else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "padding beyond the frame")
            }
            let endStream = frame.flags & LaneHTTP2Frame.endStream != 0
            if frame.flags & LaneHTTP2Frame.endHeaders == 0 {
                // (A copy: the slice would keep the whole input buffer shared, and each
                // CONTINUATION appended would copy the block.)
                var own = ByteBuffer()
                own.writeImmutableBuffer(block)
                connection.continuation = (frame.stream, own, endStream)
                connection.continuationFrames = 0
                return
            }
            try self.headerBlock(block, stream: frame.stream, endStream: endStream, client, connection)
        case .continuation:
            guard var continuation = connection.continuation else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "CONTINUATION without HEADERS")
            }
            connection.continuation = nil  // (the block's one owner while it grows)
            connection.continuationFrames += 1
            var payload = frame.payload
            continuation.block.writeBuffer(&payload)
            guard continuation.block.readableBytes <= LaneHTTP2Connection.maxHeaderBlock,
                connection.continuationFrames <= LaneHTTP2Connection.maxContinuationFrames
            else {
                throw LaneHTTP2ConnectionError(code: .enhanceYourCalm, reason: "a header block too large")
            }
            if frame.flags & LaneHTTP2Frame.endHeaders == 0 {
                connection.continuation = continuation
                return
            }
            connection.continuation = nil
            try self.headerBlock(
                continuation.block,
                stream: continuation.stream,
                endStream: continuation.endStream,
                client,
                connection
            )
        case .priority:
            guard frame.stream != 0, frame.payload.readableBytes == 5 else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "a malformed PRIORITY")
            }
        case .resetStream:
            guard frame.stream != 0, frame.payload.readableBytes == 4 else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "a malformed RST_STREAM")
            }
            if frame.stream > connection.lastStreamID {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "RST_STREAM on an idle stream")
            }
            guard connection.countReset(now: self.now) else {
                throw LaneHTTP2ConnectionError(code: .enhanceYourCalm, reason: "too many streams reset")
            }
            if let stream = connection.streams[frame.stream] {
                stream.resetCode = nil  // (the client's: nothing to send)
                self.endStream(stream)
            }
        case .settings:
            guard frame.stream == 0 else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "SETTINGS on a stream")
            }
            guard frame.flags & LaneHTTP2Frame.ack == 0 else { return }
            let delta = try connection.applySettings(frame.payload)
            connection.settingsRead = true
            LaneHTTP2Wire.writeHeader(.settings, flags: LaneHTTP2Frame.ack, stream: 0, length: 0, into: &client.output)
            self.queueFlush(client)
            if delta != 0 {
                for stream in connection.streams.values {
                    stream.sendWindow += delta
                    guard stream.sendWindow <= 0x7fff_ffff else {
                        throw LaneHTTP2ConnectionError(code: .flowControlError, reason: "a window beyond 2^31-1")
                    }
                }
                if delta > 0 { self.resumeBlocked(connection) }
            }
        case .ping:
            guard frame.stream == 0, frame.payload.readableBytes == 8 else {
                throw LaneHTTP2ConnectionError(code: .protocolError, reason: "a malformed PING")
            }
            guard frame.flags & LaneHTTP2Frame.ack == 0 else { return }
            LaneHTTP2Wire.writeHeader(.ping, flags: LaneHTTP2Frame.ack, stream: 0, length: 8, into: &client.output)
            var payload = frame.payload
            client.output.writeBuffer(&payload)
            self.queueFlush(client)
        case .goAway:
            // The client opens no more streams; those open finish.
            connection.peerGoingAway = true
            if connection.streams.isEmpty { self.closeHTTP2Gracefully(client, connection) }
        case .windowUpdate:
            guard frame.payload.readableBytes == 4,
                let raw = frame.payload.getInteger(at: frame.payload.readerIndex, as: UInt32.self)
            else { throw LaneHTTP2ConnectionError(code: .frameSizeError, reason: "a malformed WINDOW_UPDATE") }
            let increment = Int(raw & 0x7fff_ffff)
            if frame.stream == 0 {
                guard increment > 0 else {
                    throw LaneHTTP2ConnectionError(code: .protocolError, reason: "WINDOW_UPDATE of 0")
                }
                connection.sendWindow += increment
                guard connection.sendWindow <= 0x7fff_ffff else {
                    throw LaneHTTP2ConnectionError(code: .flowControlError, reason: "a window beyond 2^31-1")
                }
                self.resumeBlocked(connection)
            } else if let stream = connection.streams[frame.stream] {
                stream.sendWindow += increment
                if increment == 0 || stream.sendWindow > 0x7fff_ffff {
                    stream.resetCode = increment == 0 ? .protocolError : .flowControlError
                    return self.endStream(stream)
                }
                if stream.isBlocked { self.resumeStream(stream) }
            }
        case .pushPromise:
            throw LaneHTTP2ConnectionError(code: .protocolError, reason: "PUSH_PROMISE from a client")
        case nil:
            break  // unknown types are ignored
        }
    }

    /// A whole header block: a new stream's request, or a stream's trailers.
    private func headerBlock(
        _ block: ByteBuffer,
        stream id: UInt32,
        endStream: Bool,
        _ client: Client,
        _ connection: LaneHTTP2Connection
    ) throws(LaneHTTP2ConnectionError) {
        var block = block
        let fields: HPACKHeaders
        do {
            fields = try connection.decoder.decodeHeaders(from: &block)
        } catch {
            throw LaneHTTP2ConnectionError(code: .compressionError, reason: "HPACK: \(error)")
        }
        if let stream = connection.streams[id] {
            return self.trailers(fields, endStream: endStream, stream)
        }
        guard id & 1 == 1 else {
            throw LaneHTTP2ConnectionError(code: .protocolError, reason: "HEADERS opening stream \(id)")
        }
        // A stream that ended here (reset, or discarded): what the client still sends for it
        // is ignored (RFC 9113 section 5.4.2); its block was decoded above, for the table.
        guard id > connection.lastStreamID else { return }
        connection.lastStreamID = id
        if connection.goingAway || self.draining {
            return self.writeReset(client, id, .refusedStream)
        }
        guard connection.streams.count < connection.maxConcurrentStreams else {
            // As NIOHTTP2 (the engine): a connection error.
            throw LaneHTTP2ConnectionError(code: .protocolError, reason: "more streams than SETTINGS allow")
        }
        let head: HTTPRequestHead
        let contentLength: Int?
        switch HTTP2RequestBlock(fields) {
        case .request(let request, let length):
            head = request
            contentLength = length
        case .connect:
            self.countProvokedReset(.protocolError, connection)
            return self.writeReset(client, id, .protocolError)
        case .malformed(let problem):
            self.logger.debug("malformed HTTP/2 request", metadata: ["stream": "\(id)", "problem": "\(problem)"])
            self.countProvokedReset(.protocolError, connection)
            return self.writeReset(client, id, .protocolError)
        }
        if endStream, let contentLength, contentLength != 0 {
            self.countProvokedReset(.protocolError, connection)
            return self.writeReset(client, id, .protocolError)
        }
        let stream = LaneHTTP2Stream(
            id: id,
            connection: client,
            sendWindow: connection.peerInitialWindow,
            answeringHEAD: head.method == .HEAD,
            requestEnded: endStream
        )
        stream.remainingLength = contentLength
        let exchange = Client(
            descriptor: client.descriptor,
            generation: client.generation,
            origin: client.origin,
            clientAddress: client.clientAddress,
            limits: self.limits
        )
        exchange.counted = false
        exchange.mayBeHTTP2 = false
        exchange.stream = stream
        stream.exchange = exchange
        if connection.streams.isEmpty { self.clearDeadline(client) }
        connection.streams[id] = stream
        if endStream || contentLength != nil {
            self.startExchange(stream, head: head, chunked: false)
        } else {
            // A body of unknown length, or none (many clients end a bodiless request with an
            // empty DATA frame): the next frame, or the end of this read, tells.
            stream.pendingHead = head
            connection.pendingHeads.append(stream)
        }
    }

    /// Starts a stream's exchange with its request head, written as HTTP/1.1 into its input
    /// (`chunked`: its body follows framed so).
    private func startExchange(_ stream: LaneHTTP2Stream, head: HTTPRequestHead, chunked: Bool) {
        guard let exchange = stream.exchange else { return }
        stream.chunked = chunked
        var head = head
        head.version = .http1_1
        if chunked { head.headers.add(name: "transfer-encoding", value: "chunked") }
        self.provide(&exchange.input)
        HTTP1Encoder.writeRequestLine(head, into: &exchange.input)
        HTTP1Encoder.write(head.headers, into: &exchange.input)
        self.serveNext(exchange)
    }

    /// Streams whose head waited for the next frame: none came in this read, so a body may
    /// follow (sent upstream chunked).
    fileprivate func startPendingHeads(_ connection: LaneHTTP2Connection) {
        guard !connection.pendingHeads.isEmpty else { return }
        let pending = connection.pendingHeads
        connection.pendingHeads.removeAll(keepingCapacity: true)
        for stream in pending {
            guard let head = stream.pendingHead else { continue }
            stream.pendingHead = nil
            self.startExchange(stream, head: head, chunked: true)
        }
    }

    private func receivedData(_ stream: LaneHTTP2Stream, _ data: ByteBuffer, endStream: Bool, flowControlled: Int) {
        let size = data.readableBytes
        guard stream.isActive else { return self.discard(stream, flowControlled, ended: endStream) }
        if stream.requestEnded {
            stream.resetCode = .streamClosed
            return self.endStream(stream)
        }
        if let remaining = stream.remainingLength {
            // Checked before any byte goes on: a body longer than its length would be read by
            // an HTTP/1.1 upstream as a request of its own.
            let left = remaining - size
            guard left >= 0, left == 0 || !endStream else {
                stream.resetCode = .protocolError
                return self.endStream(stream)
            }
            stream.remainingLength = left
        }
        guard stream.unacknowledged + flowControlled <= LaneHTTP2Connection.initialWindow else {
            stream.resetCode = .flowControlError
            return self.endStream(stream)
        }
        stream.unacknowledged += flowControlled
        if endStream { stream.requestEnded = true }
        if let head = stream.pendingHead {
            stream.pendingHead = nil
            self.startExchange(stream, head: head, chunked: !(size == 0 && endStream))
        }
        guard let exchange = stream.exchange else { return }
        if stream.chunked {
            if size > 0 {
                exchange.input.writeString(String(size, radix: 16))
                exchange.input.writeStaticString("\r\n")
                exchange.input.writeImmutableBuffer(data)
                exchange.input.writeStaticString("\r\n")
            }
            if endStream { exchange.input.writeStaticString("0\r\n\r\n") }
        } else if size > 0 {
            exchange.input.writeImmutableBuffer(data)
        }
        self.requestBytesArrived(stream)
    }

    /// Trailers end the request (sent upstream as the end of a chunked body; an upstream that
    /// got a length gets none).
    private func trailers(_ fields: HPACKHeaders, endStream: Bool, _ stream: LaneHTTP2Stream) {
        guard stream.isActive else { return self.discard(stream, 0, ended: true) }
        guard endStream, !stream.requestEnded, HTTP2RequestBlock.trailersProblem(fields) == nil,
            (stream.remainingLength ?? 0) == 0
        else {
            stream.resetCode = .protocolError
            return self.endStream(stream)
        }
        stream.requestEnded = true
        if let head = stream.pendingHead {
            stream.pendingHead = nil
            self.startExchange(stream, head: head, chunked: true)
        }
        guard let exchange = stream.exchange else { return }
        if stream.chunked { exchange.input.writeStaticString("0\r\n\r\n") }
        self.requestBytesArrived(stream)
    }

    /// Request bytes were added to the exchange's input: they move on.
    private func requestBytesArrived(_ stream: LaneHTTP2Stream) {
        guard let exchange = stream.exchange else { return }
        switch exchange.state {
        case .waiting, .responding: if exchange.sendingBody { self.sendBody(exchange) }
        case .relaying: if let relay = exchange.relay { self.pumpRelay(relay) }
        default: break
        }
        self.giveBackWindow(stream)
    }

    /// Gives the stream's received bytes back as window once they moved on (the upstream took
    /// them), so a client sends no faster than the upstream reads.
    fileprivate func giveBackWindow(_ stream: LaneHTTP2Stream) {
        guard stream.isActive, !stream.requestEnded, let exchange = stream.exchange,
            stream.unacknowledged >= LaneHTTP2Connection.windowUpdateThreshold,
            exchange.input.readableBytes < LaneHTTP2Connection.windowUpdateThreshold,
            (exchange.upstream?.output.readableBytes ?? 0) < LaneHTTP2Connection.windowUpdateThreshold
        else { return }
        let client = stream.connection
        LaneHTTP2Wire.writeWindowUpdate(stream: stream.id, increment: stream.unacknowledged, into: &client.output)
        stream.unacknowledged = 0
        self.queueFlush(client)
    }

    /// Request bytes of a stream whose response ended first: read and dropped (so the sender of
    /// a short body gets its response, not a reset), up to a bound, then RST_STREAM NO_ERROR.
    private func discard(_ stream: LaneHTTP2Stream, _ size: Int, ended: Bool) {
        let client = stream.connection
        stream.discarded += size
        if ended {
            stream.requestEnded = true
            stream.resetCode = nil
            self.endStream(stream)
        } else if stream.discarded > LaneHTTP2Stream.discardLimit {
            stream.resetCode = .noError
            self.endStream(stream)
        } else if size > 0 {
            LaneHTTP2Wire.writeWindowUpdate(stream: stream.id, increment: size, into: &client.output)
            self.queueFlush(client)
        }
    }

    /// A reset the client's frames caused (a malformed request, a flow-control or stream-state
    /// error) counts as one of its own resets: resets it provokes must not be free either
    /// (CVE-2025-8671, "MadeYouReset"); past the limit the connection ends.
    private func countProvokedReset(_ code: LaneHTTP2Code, _ connection: LaneHTTP2Connection) {
        switch code {
        case .protocolError, .flowControlError, .streamClosed:
            if !connection.countReset(now: self.now) { connection.tooManyResets = true }
        default:
            break
        }
    }

    private func writeReset(_ client: Client, _ id: UInt32, _ code: LaneHTTP2Code) {
        LaneHTTP2Wire.writeReset(stream: id, code: code, into: &client.output)
        self.queueFlush(client)
    }

    // MARK: HTTP/2 responses

    /// Turns what the exchange's output holds (an HTTP/1.1 response) into the stream's frames,
    /// as far as the windows and the connection's output allow; false when the stream ended
    /// on the way.
    fileprivate func convertResponse(_ exchange: Client, _ stream: LaneHTTP2Stream) -> Bool {
        let client = stream.connection
        guard let connection = client.http2 else { return false }
        while true {
            // (A full `held` was not read further: once written, reading goes on.)
            let full = stream.held.readableBytes >= Self.heldLimit
            var parsed = false
            while !stream.responseEnded, stream.held.readableBytes < Self.heldLimit {
                let part: HTTPClientResponsePart?
                do {
                    part = try stream.decoder.next(&exchange.output)
                } catch {
                    // (Only a response the lane or the engine wrote is read here.)
                    stream.resetCode = .internalError
                    self.endStream(stream)
                    return false
                }
                guard let part else { break }
                parsed = true
                switch part {
                case .head(let head):
                    if head.status.code < 200 {
                        // 1xx: as it is, ahead of the final head.
                        self.writeHeld(stream, connection, client)
                        self.writeBlock(HTTP2ServerConnection.responseBlock(head), stream, endStream: false, connection)
                    } else {
                        stream.heldHead = head
                    }
                case .body(var body):
                    if stream.held.readableBytes == 0 { stream.held.rewind() }
                    stream.held.writeBuffer(&body)
                case .end(let trailers):
                    stream.responseEnded = true
                    if let trailers, !trailers.isEmpty { stream.trailers = trailers }
                }
            }
            // The last DATA (or the head) is written once the parts read show whether the end
            // of the stream can ride on it.
            self.writeHeld(stream, connection, client)
            if (!parsed && !full) || stream.isBlocked || stream.responseEnded { break }
        }
        if exchange.output.readableBytes == 0 { exchange.output.rewind() }
        return true
    }

    /// Response bytes a stream holds at most before its exchange's output is read further,
    /// and the most its exchange reads ahead from the upstream.
    fileprivate static let heldLimit = 65_536

    /// Encodes `fields` and writes them as the stream's HEADERS (and CONTINUATION) frames.
    private func writeBlock(
        _ fields: HPACKHeaders,
        _ stream: LaneHTTP2Stream,
        endStream: Bool,
        _ connection: LaneHTTP2Connection
    ) {
        let client = stream.connection
        var block = ByteBuffer()
        self.provide(&block)
        try? connection.encoder.encode(headers: fields, to: &block)
        LaneHTTP2Wire.writeHeaders(
            block,
            stream: stream.id,
            endStream: endStream,
            maxFrameSize: connection.peerMaxFrameSize,
            into: &client.output
        )
        block.rewind()
        self.park(&block)
        if endStream { stream.endWritten = true }
    }

    /// Writes the stream's held head, DATA (as far as the windows allow) and trailers; the
    /// stream's end rides on the last of them once the response ended.
    private func writeHeld(_ stream: LaneHTTP2Stream, _ connection: LaneHTTP2Connection, _ client: Client) {
        let ending = stream.responseEnded
        if let head = stream.heldHead {
            stream.heldHead = nil
            let endStream = ending && stream.held.readableBytes == 0 && stream.trailers == nil
            self.writeBlock(HTTP2ServerConnection.responseBlock(head), stream, endStream: endStream, connection)
        }
        var blocked = false
        if stream.held.readableBytes > 0 {
            let room = min(stream.sendWindow, connection.sendWindow, Self.outputLimit - client.output.readableBytes)
            let count = min(stream.held.readableBytes, max(room, 0))
            if count > 0 {
                let endStream = ending && count == stream.held.readableBytes && stream.trailers == nil
                LaneHTTP2Wire.writeData(
                    &stream.held,
                    count: count,
                    stream: stream.id,
                    endStream: endStream,
                    maxFrameSize: connection.peerMaxFrameSize,
                    into: &client.output
                )
                stream.sendWindow -= count
                connection.sendWindow -= count
                stream.wroteData = true
                if endStream { stream.endWritten = true }
            }
            blocked = stream.held.readableBytes > 0
        } else if ending, !stream.endWritten, stream.trailers == nil {
            // (The head went out before: an empty DATA ends the stream.)
            LaneHTTP2Wire.writeHeader(
                .data,
                flags: LaneHTTP2Frame.endStream,
                stream: stream.id,
                length: 0,
                into: &client.output
            )
            stream.endWritten = true
        }
        if !blocked, ending, !stream.endWritten, let trailers = stream.trailers {
            stream.trailers = nil
            self.writeBlock(HTTP2ServerConnection.trailersBlock(trailers), stream, endStream: true, connection)
        }
        stream.isBlocked = blocked
        if blocked, !stream.listed {
            stream.listed = true
            connection.blocked.append(stream)
        }
        self.queueFlush(client)
    }

    /// A window opened or the connection's output drained: blocked streams go on.
    fileprivate func resumeBlocked(_ connection: LaneHTTP2Connection) {
        guard !connection.blocked.isEmpty else { return }
        let blocked = connection.blocked
        connection.blocked.removeAll(keepingCapacity: true)
        for stream in blocked {
            stream.listed = false
            guard stream.isBlocked, stream.exchange != nil else { continue }
            if connection.sendWindow <= 0 || stream.connection.output.readableBytes >= Self.outputLimit {
                // Nothing can move now: it stays blocked.
                stream.listed = true
                connection.blocked.append(stream)
                continue
            }
            self.resumeStream(stream)
        }
    }

    fileprivate func resumeStream(_ stream: LaneHTTP2Stream) {
        guard let exchange = stream.exchange else { return }
        stream.isBlocked = false  // (set again if it still cannot write)
        if exchange.state == .relaying, let relay = exchange.relay {
            self.pumpRelay(relay)
        } else {
            self.flushClient(exchange)
        }
    }

    /// The exchange's response is out (its END_STREAM written): the stream ends, or, while the
    /// client still sends, discards the rest of the request for a while.
    fileprivate func finishStream(_ exchange: Client, _ stream: LaneHTTP2Stream) {
        if stream.requestEnded {
            stream.resetCode = nil
            return self.endStream(stream)
        }
        stream.state = .discarding
        exchange.state = .lingering
        self.clearDeadline(exchange)
        self.setDeadline(exchange, in: LaneHTTP2Stream.discardTime)
        if stream.unacknowledged > 0 {
            let client = stream.connection
            LaneHTTP2Wire.writeWindowUpdate(stream: stream.id, increment: stream.unacknowledged, into: &client.output)
            stream.unacknowledged = 0
            self.queueFlush(client)
        }
    }

    /// Takes the stream out of its connection: its exchange closes (an upstream connection
    /// that got part of the request is not reused), RST_STREAM with `resetCode` goes out when
    /// set. A connection going away closes once it has no stream left.
    fileprivate func endStream(_ stream: LaneHTTP2Stream) {
        let client = stream.connection
        guard let connection = client.http2, connection.streams[stream.id] === stream else { return }
        connection.streams[stream.id] = nil
        // (Left in the blocked list until it is next gone through: with nothing held.)
        stream.isBlocked = false
        stream.held = ByteBuffer()
        stream.heldHead = nil
        stream.trailers = nil
        if let code = stream.resetCode, !(stream.endWritten && code == .internalError) {
            self.writeReset(client, stream.id, code)
            self.countProvokedReset(code, connection)
        }
        if let exchange = stream.exchange {
            self.closeExchange(exchange)
            stream.exchange = nil
        }
        stream.pendingHead = nil
        if connection.streams.isEmpty, self.isOpen(client) {
            if connection.goingAway || connection.peerGoingAway {
                self.closeHTTP2Gracefully(client, connection)
            } else if client.state == .http2 {
                self.setDeadline(client, in: Self.nanoseconds(self.limits.idleTimeout))
            }
        }
    }

    /// GOAWAY: no new streams; the connection closes once those open ended.
    fileprivate func goAway(_ client: Client) {
        guard let connection = client.http2, !connection.goingAway else { return }
        connection.goingAway = true
        LaneHTTP2Wire.writeGoAway(lastStream: connection.lastStreamID, code: .noError, into: &client.output)
        self.queueFlush(client)
        if connection.streams.isEmpty { self.closeHTTP2Gracefully(client, connection) }
    }

    private func closeHTTP2Gracefully(_ client: Client, _ connection: LaneHTTP2Connection) {
        guard client.state == .http2 else { return }
        if !connection.goingAway {
            connection.goingAway = true
            LaneHTTP2Wire.writeGoAway(lastStream: connection.lastStreamID, code: .noError, into: &client.output)
        }
        client.state = .closing
        self.setDeadline(client, in: Self.nanoseconds(self.limits.idleTimeout))
        if self.flushClient(client), client.state == .closing { self.beginLinger(client) }
    }

    /// A connection error: GOAWAY with its code, then the connection closes.
    private func failHTTP2(_ client: Client, _ connection: LaneHTTP2Connection, _ error: LaneHTTP2ConnectionError) {
        self.logger.debug("HTTP/2 connection error", metadata: ["reason": "\(error.reason)"])
        client.state = .closing
        connection.goingAway = true
        for stream in Array(connection.streams.values) {
            stream.resetCode = nil
            self.endStream(stream)
        }
        LaneHTTP2Wire.writeGoAway(lastStream: connection.lastStreamID, code: error.code, into: &client.output)
        client.state = .closing
        client.input.clear()
        self.setDeadline(client, in: Self.nanoseconds(self.limits.idleTimeout))
        if self.flushClient(client), client.state == .closing { self.beginLinger(client) }
    }

    /// Relays a stream's exchange to the engine (a request the lane does not serve): over a
    /// socket pair, as an HTTP/1.1 connection whose one request is this one.
    fileprivate func pumpStreamRelay(_ relay: Relay, _ exchange: Client, _ stream: LaneHTTP2Stream) {
        var moved = true
        while moved, stream.exchange === exchange {
            moved = false
            if exchange.input.readableBytes > 0 { moved = self.writeRelay(relay, &exchange.input) }
            if relay.readable, !relay.atEnd, exchange.output.readableBytes < Self.heldLimit, !stream.isBlocked {
                self.readRelay(relay, into: &exchange.output, limit: Self.heldLimit)
                moved = true
            }
            guard self.convertResponse(exchange, stream) else { return }
            if relay.atEnd, !stream.responseEnded, exchange.output.readableBytes == 0 {
                if case .end? = stream.decoder.connectionClosed(), let connection = stream.connection.http2 {
                    stream.responseEnded = true
                    self.writeHeld(stream, connection, stream.connection)
                } else {
                    stream.resetCode = .internalError
                    return self.endStream(stream)
                }
            }
            if stream.endWritten {
                self.endRelay(exchange)
                return self.finishStream(exchange, stream)
            }
        }
        guard stream.exchange === exchange else { return }
        // A response the client's window holds back: the idle timeout (the engine's own
        // timeouts govern the rest).
        if stream.isBlocked {
            if exchange.list == nil || stream.wroteData {
                self.setDeadline(exchange, in: Self.nanoseconds(self.limits.idleTimeout))
            }
            stream.wroteData = false
        } else if exchange.list != nil {
            self.clearDeadline(exchange)
        }
        self.giveBackWindow(stream)
    }

    /// Closes a stream's exchange (the stream itself is ended by ``endStream(_:)``).
    private func closeExchange(_ exchange: Client) {
        self.abandonExchange(exchange)
        self.clearDeadline(exchange)
        self.park(&exchange.output)
        self.park(&exchange.upstreamRequest)
    }
}
#endif
