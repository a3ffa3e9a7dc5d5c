#if os(Linux)
// The fast lane: plain-HTTP listeners served from Portico's own epoll loop on a thread of
// its own, instead of through NIO's channel pipeline (docs/architecture.md, "The fast lane").
//
// Why: on NIO the channel machinery alone (pipeline, pending writes, selector, promises)
// costs more user CPU per proxied HTTP/1.1 request than nginx spends on the whole request;
// a loop that reads and writes the sockets itself needs ~2 us (bench/epoll-spike). This
// first stage owns the listening sockets, accepts, and reads a connection's first bytes;
// the connection is then handed to the NIO engine with those bytes (the fd changes owner),
// so behaviour is the engine's. Later stages serve the common requests here and hand over
// the rest at that same point.

import CPorticoEpoll
import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// An epoll loop on its own thread that owns plain-HTTP listening sockets.
final class HTTPFastLane: @unchecked Sendable {
    /// A connection the lane does not serve: its descriptor and the bytes read from it so
    /// far now belong to the callee. Called on the lane's thread.
    /// (The engine's header timeout then starts again when the head is partial, as it does
    /// for a connection NIO accepted whose first bytes are a partial head.)
    typealias Handoff = @Sendable (_ descriptor: CInt, _ listener: HTTPListener, _ bytes: ByteBuffer) -> Void

    /// A listening socket owned by the lane.
    final class Listener: Sendable {
        let descriptor: CInt
        let listener: HTTPListener
        let localAddress: SocketAddress

        fileprivate init(descriptor: CInt, listener: HTTPListener, localAddress: SocketAddress) {
            self.descriptor = descriptor
            self.listener = listener
            self.localAddress = localAddress
        }
    }

    private enum Tag: UInt64 {
        case wake = 0
        case listener = 1
        case connection = 2
    }

    /// An accepted connection whose first bytes have not come yet.
    private final class Waiting {
        let descriptor: CInt
        let listener: HTTPListener
        /// The header read timeout it got (nanoseconds) and the monotonic time after which it
        /// is closed: nothing sent, as the engine closes such connections.
        let timeout: UInt64
        let deadline: UInt64
        /// Neighbours in the list of connections with the same timeout (``DeadlineList``).
        var previous: Waiting?
        var next: Waiting?

        init(descriptor: CInt, listener: HTTPListener, timeout: UInt64, now: UInt64) {
            self.descriptor = descriptor
            self.listener = listener
            self.timeout = timeout
            self.deadline = now + timeout
        }
    }

    /// Connections accepted with the same timeout, so in deadline order; unlinked in O(1)
    /// when handed over or closed.
    private struct DeadlineList {
        var head: Waiting?
        var tail: Waiting?

        mutating func append(_ connection: Waiting) {
            connection.previous = self.tail
            if let tail = self.tail { tail.next = connection } else { self.head = connection }
            self.tail = connection
        }

        mutating func remove(_ connection: Waiting) {
            if let previous = connection.previous {
                previous.next = connection.next
            } else {
                self.head = connection.next
            }
            if let next = connection.next {
                next.previous = connection.previous
            } else {
                self.tail = connection.previous
            }
            connection.previous = nil
            connection.next = nil
        }
    }

    /// What other threads share with the loop, under one lock.
    private struct Control {
        var commands: [@Sendable () -> Void] = []
        /// Set by ``shutdown()``: no command is taken any more.
        var stopped = false
        var thread: pthread_t?
    }

    private let epoll: CInt
    private let wake: CInt
    private let handoff: Handoff
    private let core: EngineCore
    private let logger: Logger
    private let control = NIOLockedValueBox(Control())

    // Loop-only state.
    private var listeners: [CInt: Listener] = [:]
    private var running = true
    /// Listeners taken out of the loop after accept ran out of descriptors, and when to retry.
    private var paused: [(Listener, retryAt: timespec)] = []
    private var waiting: [CInt: Waiting] = [:]
    /// The same connections by timeout (one list unless a reload changed the timeout).
    private var deadlines: [UInt64: DeadlineList] = [:]

    init(core: EngineCore, handoff: @escaping Handoff) throws {
        self.core = core
        self.logger = core.logger
        self.handoff = handoff
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

    /// Stops the loop and waits for its thread; listeners and connections still waiting are
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
        for (descriptor, _) in self.waiting {
            Glibc.close(descriptor)
            self.core.openConnections.decrement()
        }
        self.listeners = [:]
        self.paused = []
        self.waiting = [:]
        self.deadlines = [:]
        Glibc.close(self.wake)
        Glibc.close(self.epoll)
    }

    // MARK: Listeners

    /// Binds and listens on `listener`'s address and port (here, so errors reach the caller),
    /// then lets the loop accept on it.
    func listen(_ listener: HTTPListener) throws -> Listener {
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: listener.address, port: listener.port)
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
        // IP_FREEBIND: bind a virtual IP before this node holds it (as the NIO listeners do).
        _ = setsockopt(descriptor, CInt(IPPROTO_IP), 15, &one, size)
        let bound = address.withSockAddr { pointer, length in bind(descriptor, pointer, socklen_t(length)) }
        guard bound == 0, Glibc.listen(descriptor, 1024) == 0 else {
            let error = IOError(errnoCode: errno, reason: "bind \(listener.address):\(listener.port)")
            Glibc.close(descriptor)
            throw error
        }
        // The port actually bound (port 0 picks one); sin_port and sin6_port share an offset.
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        let port = named == 0 ? Int(UInt16(bigEndian: storage.sin6_port)) : listener.port
        let localAddress = (try? SocketAddress(ipAddress: listener.address, port: port)) ?? address
        let result = Listener(descriptor: descriptor, listener: listener, localAddress: localAddress)
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

    private static func tag(_ tag: Tag, _ descriptor: CInt) -> UInt64 {
        tag.rawValue << 32 | UInt64(UInt32(bitPattern: descriptor))
    }

    private func run() {
        Self.nameThread("portico-fast")
        let capacity: CInt = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        defer { events.deallocate() }
        while self.running {
            let ready = epoll_wait(self.epoll, events, capacity, self.timeout())
            if ready < 0 {
                let error = errno
                if error == EINTR { continue }
                self.logger.error("fast lane: epoll_wait failed", metadata: ["errno": "\(error)"])
                return
            }
            if !self.paused.isEmpty { self.resumePaused() }
            for index in 0..<max(0, Int(ready)) {
                let tag = portico_epoll_tag(events, CInt(index))
                let descriptor = CInt(bitPattern: UInt32(truncatingIfNeeded: tag))
                switch Tag(rawValue: tag >> 32) {
                case .wake: self.runCommands()
                case .listener: if let listener = self.listeners[descriptor] { self.accept(listener) }
                case .connection: if let connection = self.waiting[descriptor] { self.readFirst(connection) }
                case nil: break
                }
            }
            if !self.deadlines.isEmpty { self.expire() }
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

    private func accept(_ listener: Listener) {
        while true {
            let descriptor = portico_accept4(
                listener.descriptor,
                nil,
                nil,
                CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
            )
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
                    var now = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &now)
                    now.tv_nsec += 100_000_000
                    if now.tv_nsec >= 1_000_000_000 {
                        now.tv_sec += 1
                        now.tv_nsec -= 1_000_000_000
                    }
                    self.paused.append((listener, now))
                    return
                }
            }
            var one: CInt = 1
            _ = setsockopt(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
            self.core.openConnections.increment()
            let timeout = UInt64(max(0, self.core.state.limits.headerReadTimeout.nanoseconds))
            let connection = Waiting(
                descriptor: descriptor,
                listener: listener.listener,
                timeout: timeout,
                now: Self.now()
            )
            self.waiting[descriptor] = connection
            self.deadlines[timeout, default: DeadlineList()].append(connection)
            _ = portico_epoll_ctl(
                self.epoll,
                EPOLL_CTL_ADD,
                descriptor,
                EPOLLIN.rawValue,
                Self.tag(.connection, descriptor)
            )
        }
    }

    /// The first bytes of a connection: it goes to the engine with them.
    private func readFirst(_ connection: Waiting) {
        var bytes = ByteBuffer()
        var failure: CInt = 0
        let count = bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: 16_384) { buffer in
            let count = read(connection.descriptor, buffer.baseAddress, buffer.count)
            failure = count < 0 ? errno : 0
            return max(count, 0)
        }
        if count == 0 && (failure == EAGAIN || failure == EINTR) { return }
        self.finish(connection)
        if count == 0 {
            // Closed (or failed) before a byte arrived.
            Glibc.close(connection.descriptor)
            self.core.openConnections.decrement()
            return
        }
        self.core.openConnections.decrement()  // counted again by the engine
        self.handoff(connection.descriptor, connection.listener, bytes)
    }

    /// Takes a waiting connection out of the loop (the descriptor stays open).
    private func finish(_ connection: Waiting) {
        self.waiting[connection.descriptor] = nil
        _ = epoll_ctl(self.epoll, EPOLL_CTL_DEL, connection.descriptor, nil)
        self.deadlines[connection.timeout]?.remove(connection)
        if self.deadlines[connection.timeout]?.head == nil { self.deadlines[connection.timeout] = nil }
    }

    /// Closes the waiting connections whose deadline passed.
    private func expire() {
        let now = Self.now()
        for (_, list) in self.deadlines {
            var next = list.head
            while let connection = next, connection.deadline <= now {
                next = connection.next
                self.finish(connection)
                Glibc.close(connection.descriptor)
                self.core.openConnections.decrement()
            }
        }
    }

    /// epoll_wait's timeout: until the next deadline, 100 ms while a listener is paused.
    private func timeout() -> CInt {
        var timeout: CInt = self.paused.isEmpty ? -1 : 100
        let now = Self.now()
        for (_, list) in self.deadlines {
            guard let deadline = list.head?.deadline else { continue }
            let milliseconds = deadline > now ? CInt(min((deadline - now + 999_999) / 1_000_000, 60_000)) : 0
            timeout = timeout < 0 ? milliseconds : min(timeout, milliseconds)
        }
        return timeout
    }

    private static func now() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
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

    /// Names the calling thread for ps and perf (at most 15 bytes).
    private static func nameThread(_ name: String) {
        portico_name_thread(name)
    }
}
#endif
