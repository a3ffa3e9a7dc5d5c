// The I/O core experiment (docs/benchmarks.md): a single-threaded HTTP/1.1 keep-alive reverse
// proxy on its own epoll loop, doing the per-request work Portico's hot path does (parse the
// request head, look the Host up in a table, drop hop-by-hop fields, append X-Forwarded-For /
// X-Real-IP / X-Forwarded-Proto, reuse an idle upstream connection, parse the response head,
// forward a Content-Length body, count the status class, note the activity time) and nothing
// else. It answers one question: how much user CPU per request does Swift itself need when
// NIO's channel pipeline is not in the way? It is not a product and handles only GETs whose
// responses carry a Content-Length.
//
// usage: EpollSpike LISTEN_PORT UPSTREAM_PORT [HOST...]
import CEpoll
import Glibc

let arguments = CommandLine.arguments
let listenPort = UInt16(arguments.count > 1 ? Int(arguments[1]) ?? 18083 : 18083)
let upstreamPort = UInt16(arguments.count > 2 ? Int(arguments[2]) ?? 18080 : 18080)
let routedHosts = arguments.count > 3 ? Array(arguments[3...]) : ["127.0.0.1:\(listenPort)"]

/// A fixed-size byte buffer with read and write positions.
final class Buffer {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var start = 0
    var end = 0

    init(capacity: Int) {
        self.base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    deinit { self.base.deallocate() }

    var count: Int { self.end - self.start }
    var room: Int { self.capacity - self.end }

    func reset() {
        self.start = 0
        self.end = 0
    }

    func compact() {
        guard self.start > 0 else { return }
        if self.count > 0 { memmove(self.base, self.base + self.start, self.count) }
        self.end -= self.start
        self.start = 0
    }

    func append(_ pointer: UnsafePointer<UInt8>, _ length: Int) {
        precondition(length <= self.room, "buffer full")
        memcpy(self.base + self.end, pointer, length)
        self.end += length
    }

    func append(_ text: StaticString) {
        self.append(text.utf8Start, text.utf8CodeUnitCount)
    }
}

enum Kind { case client, upstream }

final class Connection {
    let fd: Int32
    let kind: Kind
    let input = Buffer(capacity: 65536)
    /// Bytes the socket did not take yet.
    var pending: Buffer?
    /// The other side of the exchange in flight.
    var peer: Connection?
    var busy = false
    var connecting = false
    var headForwarded = false
    var remaining = 0
    var lastActive = 0

    init(fd: Int32, kind: Kind) {
        self.fd = fd
        self.kind = kind
    }
}

// MARK: - Sockets

func check(_ result: Int32, _ what: String) {
    if result < 0 {
        perror(what)
        exit(1)
    }
}

func loopbackAddress(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

func setOption(_ fd: Int32, _ level: Int32, _ name: Int32) {
    var one: Int32 = 1
    _ = setsockopt(fd, level, name, &one, socklen_t(MemoryLayout<Int32>.size))
}

let epollFD = epoll_create1(0)
check(epollFD, "epoll_create1")
var connections = [Connection?](repeating: nil, count: 1 << 16)
var idleUpstreams: [Connection] = []
var now = 0
var statusCounts = [Int](repeating: 0, count: 6)

func watch(_ fd: Int32, write: Bool, operation: Int32) {
    var event = epoll_event()
    event.events = EPOLLIN.rawValue | (write ? EPOLLOUT.rawValue : 0)
    event.data.fd = fd
    _ = epoll_ctl(epollFD, operation, fd, &event)
}

let listenFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
check(listenFD, "socket")
setOption(listenFD, SOL_SOCKET, SO_REUSEADDR)
var listenAddress = loopbackAddress(port: listenPort)
check(
    withUnsafePointer(to: &listenAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    },
    "bind"
)
check(listen(listenFD, 4096), "listen")
watch(listenFD, write: false, operation: EPOLL_CTL_ADD)

func acceptAll() {
    while true {
        let fd = cepoll_accept(listenFD, Int32(SOCK_NONBLOCK.rawValue))
        if fd < 0 { return }
        setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
        let connection = Connection(fd: fd, kind: .client)
        connection.lastActive = now
        connections[Int(fd)] = connection
        watch(fd, write: false, operation: EPOLL_CTL_ADD)
    }
}

func connectUpstream() -> Connection? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else { return nil }
    setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY)
    var address = loopbackAddress(port: upstreamPort)
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    let connection = Connection(fd: fd, kind: .upstream)
    if result < 0 {
        guard errno == EINPROGRESS else {
            close(fd)
            return nil
        }
        connection.connecting = true
    }
    connections[Int(fd)] = connection
    watch(fd, write: connection.connecting, operation: EPOLL_CTL_ADD)
    return connection
}

func closeConnection(_ connection: Connection) {
    guard connections[Int(connection.fd)] === connection else { return }
    connections[Int(connection.fd)] = nil
    close(connection.fd)
    if let peer = connection.peer {
        connection.peer = nil
        peer.peer = nil
        // An exchange cut short: the other side cannot be reused either.
        closeConnection(peer)
    }
    if connection.kind == .upstream, let index = idleUpstreams.firstIndex(where: { $0 === connection }) {
        idleUpstreams.remove(at: index)
    }
}

/// Writes `buffer`'s bytes to `connection`, keeping what the socket does not take.
func send(_ connection: Connection, _ pointer: UnsafePointer<UInt8>, _ length: Int) {
    var written = 0
    if connection.pending == nil && !connection.connecting {
        written = write(connection.fd, pointer, length)
        if written < 0 {
            guard errno == EAGAIN else { return closeConnection(connection) }
            written = 0
        }
    }
    if written < length {
        if connection.pending == nil {
            connection.pending = Buffer(capacity: 1 << 20)
            if !connection.connecting { watch(connection.fd, write: true, operation: EPOLL_CTL_MOD) }
        }
        connection.pending!.append(pointer + written, length - written)
    }
}

func writable(_ connection: Connection) {
    if connection.connecting {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length)
        guard error == 0 else { return closeConnection(connection) }
        connection.connecting = false
    }
    if let pending = connection.pending {
        let written = write(connection.fd, pending.base + pending.start, pending.count)
        if written < 0 {
            guard errno == EAGAIN else { return closeConnection(connection) }
            return
        }
        pending.start += written
        guard pending.count == 0 else { return }
        connection.pending = nil
    }
    watch(connection.fd, write: false, operation: EPOLL_CTL_MOD)
}

// MARK: - HTTP

/// The end of the head (the index after CR LF CR LF) in `buffer`, if it is all there.
func headEnd(_ buffer: Buffer) -> Int? {
    guard buffer.count >= 4 else { return nil }
    let found = cepoll_memmem(buffer.base + buffer.start, buffer.count, "\r\n\r\n", 4)
    guard let found else { return nil }
    return found.assumingMemoryBound(to: UInt8.self) - buffer.base + 4
}

/// Whether the `length` bytes at `pointer` are `name` (lowercase) in any case.
@inline(__always)
func nameIs(_ pointer: UnsafePointer<UInt8>, _ length: Int, _ name: StaticString) -> Bool {
    guard length == name.utf8CodeUnitCount else { return false }
    let expected = name.utf8Start
    for index in 0..<length where pointer[index] | 0x20 != expected[index] {
        return false
    }
    return true
}

/// FNV-1a of a byte range (the route table's key).
func hash(_ pointer: UnsafePointer<UInt8>, _ length: Int) -> UInt64 {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    for index in 0..<length {
        value = (value ^ UInt64(pointer[index] | 0x20)) &* 0x100_0000_01b3
    }
    return value
}

var routes: [UInt64: Int] = [:]
for (index, host) in routedHosts.enumerated() {
    var host = host
    host.withUTF8 { routes[hash($0.baseAddress!, $0.count)] = index }
}

let scratch = Buffer(capacity: 1 << 17)

/// Walks the field lines between `start` and `end` (each ending in CR LF), calling `body` with
/// the line, its name and its value (trimmed).
@inline(__always)
func forEachField(
    _ base: UnsafeMutablePointer<UInt8>,
    _ start: Int,
    _ end: Int,
    _ body: (Int, Int, Int, Int, Int, Int) -> Void
) {
    var line = start
    while line < end {
        let found = memchr(base + line, 0x0A, end - line)!.assumingMemoryBound(to: UInt8.self)
        let lineEnd = found - base + 1
        let colon = memchr(base + line, 0x3A, lineEnd - line)
        if let colon {
            let nameEnd = colon.assumingMemoryBound(to: UInt8.self) - base
            var valueStart = nameEnd + 1
            while base[valueStart] == 0x20 { valueStart += 1 }
            var valueEnd = lineEnd - 1
            while valueEnd > valueStart && (base[valueEnd - 1] == 0x0D || base[valueEnd - 1] == 0x20) { valueEnd -= 1 }
            body(line, lineEnd, nameEnd, valueStart, valueEnd, 0)
        }
        line = lineEnd
    }
}

func respondLocally(_ client: Connection, _ response: StaticString) {
    send(client, response.utf8Start, response.utf8CodeUnitCount)
}

func processClient(_ client: Connection) {
    while !client.busy && connections[Int(client.fd)] === client {
        let input = client.input
        guard let end = headEnd(input) else {
            if input.room == 0 {
                input.compact()
                if input.room == 0 { closeConnection(client) }
            }
            return
        }
        let base = input.base
        let lineEnd =
            memchr(base + input.start, 0x0A, end - input.start)!.assumingMemoryBound(to: UInt8.self) - base + 1
        scratch.reset()
        scratch.append(base + input.start, lineEnd - input.start)
        var hostHash: UInt64?
        var hasBody = false
        forEachField(base, lineEnd, end - 2) { line, lineEnd, nameEnd, valueStart, valueEnd, _ in
            let name = UnsafePointer(base + line)
            let nameLength = nameEnd - line
            switch nameLength {
            case 4 where nameIs(name, 4, "host"):
                hostHash = hash(base + valueStart, valueEnd - valueStart)
            case 10 where nameIs(name, 10, "connection") || nameIs(name, 10, "keep-alive"):
                return
            case 14 where nameIs(name, 14, "content-length"):
                hasBody = !(valueEnd - valueStart == 1 && base[valueStart] == 0x30)
            case 16 where nameIs(name, 16, "proxy-connection"):
                return
            case 17 where nameIs(name, 17, "transfer-encoding"):
                hasBody = true
            default: break
            }
            scratch.append(base + line, lineEnd - line)
        }
        input.start = end
        if input.count == 0 { input.reset() }
        guard !hasBody else {
            respondLocally(client, "HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            return closeConnection(client)
        }
        guard let hostHash, routes[hostHash] != nil else {
            statusCounts[4] += 1
            respondLocally(client, "HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\nno route\r\n")
            continue
        }
        scratch.append("x-forwarded-for: 127.0.0.1\r\nx-real-ip: 127.0.0.1\r\nx-forwarded-proto: http\r\n\r\n")
        guard let upstream = idleUpstreams.popLast() ?? connectUpstream() else {
            statusCounts[5] += 1
            respondLocally(client, "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 12\r\n\r\nno upstream\n")
            continue
        }
        client.busy = true
        client.peer = upstream
        upstream.peer = client
        upstream.headForwarded = false
        send(upstream, scratch.base, scratch.count)
    }
}

func forwardResponse(_ upstream: Connection) {
    guard let client = upstream.peer else { return closeConnection(upstream) }
    let input = upstream.input
    scratch.reset()
    if !upstream.headForwarded {
        guard let end = headEnd(input) else { return }
        let base = input.base
        let lineEnd =
            memchr(base + input.start, 0x0A, end - input.start)!.assumingMemoryBound(to: UInt8.self) - base + 1
        let status = Int(base[input.start + 9] &- 0x30)
        scratch.append(base + input.start, lineEnd - input.start)
        var length = -1
        forEachField(base, lineEnd, end - 2) { line, lineEnd, nameEnd, valueStart, valueEnd, _ in
            let name = UnsafePointer(base + line)
            switch nameEnd - line {
            case 10 where nameIs(name, 10, "connection") || nameIs(name, 10, "keep-alive"):
                return
            case 14 where nameIs(name, 14, "content-length"):
                var value = 0
                for index in valueStart..<valueEnd { value = value * 10 + Int(base[index] &- 0x30) }
                length = value
            default: break
            }
            scratch.append(base + line, lineEnd - line)
        }
        scratch.append("\r\n")
        input.start = end
        guard length >= 0 else { return closeConnection(upstream) }
        upstream.remaining = length
        upstream.headForwarded = true
        if status < 6 { statusCounts[status] += 1 }
    }
    let take = min(upstream.remaining, input.count)
    if take > 0 {
        if take <= scratch.room {
            scratch.append(input.base + input.start, take)
        } else {
            send(client, scratch.base, scratch.count)
            scratch.reset()
            send(client, input.base + input.start, take)
        }
        input.start += take
        upstream.remaining -= take
    }
    if scratch.count > 0 { send(client, scratch.base, scratch.count) }
    if input.count == 0 { input.reset() }
    guard upstream.remaining == 0 else { return }
    upstream.peer = nil
    client.peer = nil
    client.busy = false
    if input.count > 0 {
        closeConnection(upstream)
    } else {
        idleUpstreams.append(upstream)
    }
    processClient(client)
}

func readable(_ connection: Connection) {
    let input = connection.input
    if input.room == 0 { input.compact() }
    let count = read(connection.fd, input.base + input.end, input.room)
    if count <= 0 {
        if count < 0 && errno == EAGAIN { return }
        return closeConnection(connection)
    }
    input.end += count
    connection.lastActive = now
    switch connection.kind {
    case .client: processClient(connection)
    case .upstream: forwardResponse(connection)
    }
}

// MARK: - The loop

signal(SIGPIPE, SIG_IGN)
var events = [epoll_event](repeating: epoll_event(), count: 512)
var clock = timespec()
while true {
    let ready = epoll_wait(epollFD, &events, Int32(events.count), 1000)
    clock_gettime(CLOCK_MONOTONIC_COARSE, &clock)
    now = clock.tv_sec * 1000 + clock.tv_nsec / 1_000_000
    guard ready > 0 else { continue }
    for index in 0..<Int(ready) {
        let event = events[index]
        let fd = event.data.fd
        if fd == listenFD {
            acceptAll()
            continue
        }
        guard let connection = connections[Int(fd)] else { continue }
        if event.events & EPOLLOUT.rawValue != 0 { writable(connection) }
        if event.events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0,
            connections[Int(fd)] === connection
        {
            readable(connection)
        }
    }
}
