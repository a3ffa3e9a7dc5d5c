import CPorticoUDP
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A destination address in memory that stays put while a flow lives (the `sockaddr` that
/// `sendmmsg` points at).
final class DatagramAddress {
    let address: SocketAddress
    private let storage: UnsafeMutableRawPointer
    let length: socklen_t

    init(_ address: SocketAddress) {
        self.address = address
        let capacity = MemoryLayout<sockaddr_storage>.size
        let storage = UnsafeMutableRawPointer.allocate(
            byteCount: capacity,
            alignment: MemoryLayout<sockaddr_storage>.alignment
        )
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        let length = address.withSockAddr { pointer, size in
            storage.copyMemory(from: UnsafeRawPointer(pointer), byteCount: min(size, capacity))
            return min(size, capacity)
        }
        self.storage = storage
        self.length = socklen_t(length)
    }

    deinit {
        self.storage.deallocate()
    }

    var pointer: UnsafePointer<sockaddr> { UnsafePointer(self.storage.assumingMemoryBound(to: sockaddr.self)) }
}

/// What became of the datagrams handed to ``DatagramSender/send(_:)``.
struct DatagramSendResult: Equatable {
    /// Datagrams the kernel refused for good (too large, no route, ...): counted as dropped.
    var dropped = 0
    /// The error that makes the socket unusable (a connected flow's `ECONNREFUSED`, ...).
    var fatalError: CInt?
    /// Segmentation offload was refused on this route: the runs were sent one datagram at a
    /// time, and the caller stops making runs for this socket.
    var offloadRefused = false
}

/// One entry of ``DatagramSender``'s queue: a send and where it goes.
struct QueuedDatagram {
    var send: DatagramSend
    /// The destination; nil on a connected socket.
    var address: DatagramAddress?
}

/// Sends datagrams straight to a socket that a NIO channel reads, with `sendmmsg`: several
/// destinations per call, runs of same-size datagrams as one segmented datagram. NIO's own
/// write path would close the channel on any error but two; here each datagram's error has
/// its own answer (``DatagramSendResult``), and a refused segmentation offload (IPsec on the
/// route, checksum offload off, an older kernel) falls back to single datagrams without
/// losing any.
///
/// Not thread-safe: used on the channel's event loop only, and only while the channel (and
/// so the descriptor) is open.
final class DatagramSender {
    /// Datagrams per `sendmmsg` call.
    static let capacity = 64

    /// Whether the direct path exists on this platform (Linux, `sendmmsg`).
    static let isSupported: Bool = {
        #if os(Linux)
        return true
        #else
        return false
        #endif
    }()

    /// Whether the kernel accepts `UDP_SEGMENT` at all (Linux 4.18 and later). This must be
    /// checked: an older kernel ignores the control message and would send a run as one
    /// large datagram.
    static let supportsSegmentation: Bool = portico_udp_segmentation_supported() != 0

    /// The transmit step, replaceable in tests: send `datagrams` (at most ``capacity``) on
    /// the socket; the count sent (>= 1), or the errno of the first one.
    typealias Transmit = (_ datagrams: UnsafeBufferPointer<portico_udp_datagram>) -> Result<Int, DatagramErrno>

    private let transmit: Transmit
    private var queue: [QueuedDatagram] = []
    private var entries: [portico_udp_datagram] = []

    /// A sender on descriptor `descriptor`.
    convenience init(descriptor: CInt) {
        let scratch = portico_udp_scratch_create(UInt32(Self.capacity))
        let holder = ScratchHolder(scratch)
        self.init { datagrams in
            var error: CInt = 0
            let sent = portico_udp_send(
                descriptor,
                holder.scratch,
                datagrams.baseAddress,
                UInt32(datagrams.count),
                &error
            )
            return sent > 0 ? .success(Int(sent)) : .failure(DatagramErrno(code: error))
        }
    }

    init(transmit: @escaping Transmit) {
        self.transmit = transmit
        self.entries.reserveCapacity(Self.capacity)
    }

    var isEmpty: Bool { self.queue.isEmpty }

    /// Queues a send for the next ``flush()``.
    func enqueue(_ send: DatagramSend, to address: DatagramAddress?) {
        self.queue.append(QueuedDatagram(send: send, address: address))
    }

    /// Drops everything queued (the socket is gone); returns how many datagrams that was.
    func discardAll() -> Int {
        let count = self.queue.reduce(0) { $0 + $1.send.count }
        self.queue.removeAll(keepingCapacity: true)
        return count
    }

    /// Sends everything queued, in order. `leftover`: the sends not attempted because the
    /// socket's buffer is full (`EAGAIN`), in order; the caller queues them in the channel,
    /// which waits for writability.
    func flush() -> (result: DatagramSendResult, leftover: [QueuedDatagram]) {
        var result = DatagramSendResult()
        var index = 0
        while index < self.queue.count {
            let end = min(index + Self.capacity, self.queue.count)
            switch self.transmitRange(index..<end) {
            case .success(let sent):
                index += sent
            case .failure(let error):
                let failed = self.queue[index]
                if error.isWouldBlock {
                    let leftover = Array(self.queue[index...])
                    self.queue.removeAll(keepingCapacity: true)
                    return (result, leftover)
                }
                if failed.send.count > 1 && error.isSegmentationRefusal {
                    // Send the run again as single datagrams, and make no more runs.
                    result.offloadRefused = true
                    let singles = failed.send.datagrams.map {
                        QueuedDatagram(
                            send: DatagramSend(buffer: $0, segmentSize: $0.readableBytes, count: 1, isOpen: false),
                            address: failed.address
                        )
                    }
                    self.queue.replaceSubrange(index...index, with: singles)
                    continue
                }
                if error.isFatalOnConnectedSocket && failed.address == nil {
                    result.fatalError = error.code
                    for queued in self.queue[index...] { result.dropped += queued.send.count }
                    self.queue.removeAll(keepingCapacity: true)
                    return (result, [])
                }
                result.dropped += failed.send.count
                index += 1
            }
        }
        self.queue.removeAll(keepingCapacity: true)
        return (result, [])
    }

    private func transmitRange(_ range: Range<Int>) -> Result<Int, DatagramErrno> {
        self.entries.removeAll(keepingCapacity: true)
        for position in range {
            let queued = self.queue[position]
            // The buffer stays alive (and unmodified) in `queue` during the call, so the
            // pointer into its storage stays valid.
            let base = queued.send.buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
            self.entries.append(
                portico_udp_datagram(
                    base: base,
                    length: queued.send.buffer.readableBytes,
                    address: queued.address?.pointer,
                    address_length: queued.address?.length ?? 0,
                    segment_size: queued.send.count > 1 ? UInt16(queued.send.segmentSize) : 0
                )
            )
        }
        return self.entries.withUnsafeBufferPointer { self.transmit($0) }
    }
}

/// The `errno` of a failed send.
struct DatagramErrno: Error, Equatable {
    var code: CInt

    /// The socket's send buffer is full.
    var isWouldBlock: Bool { self.code == EAGAIN || self.code == EWOULDBLOCK }

    /// Errors by which the kernel refuses a segmented send it would take as single datagrams:
    /// EIO (IPsec on the route; before Linux 6.x also no checksum offload on the device),
    /// EINVAL (checksums off, too many segments, segment above the MTU on older kernels),
    /// EMSGSIZE (segment above the path MTU), and no support at all.
    var isSegmentationRefusal: Bool {
        [EIO, EINVAL, EMSGSIZE, ENOPROTOOPT, EOPNOTSUPP].contains(self.code)
    }

    /// Errors after which a connected flow socket is closed (as NIO's write path did): the
    /// next datagram from the client opens a new flow. Other errors drop one datagram.
    var isFatalOnConnectedSocket: Bool {
        ![EMSGSIZE, EHOSTUNREACH, ENETUNREACH, EPERM, EACCES, ENOBUFS].contains(self.code)
    }
}

/// Frees the C scratch space with the sender's transmit closure.
private final class ScratchHolder {
    let scratch: OpaquePointer?

    init(_ scratch: OpaquePointer?) {
        self.scratch = scratch
    }

    deinit {
        portico_udp_scratch_destroy(self.scratch)
    }
}
