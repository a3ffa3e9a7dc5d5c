import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A transfer's own UDP socket, used with plain blocking system calls by the transfer's
/// thread (`TFTPTransferRunner`): receives wait at most one `tick`, so the thread can check
/// its deadline and whether it was asked to stop. Confined to one thread at a time.
final class TFTPTransferSocket {
    /// What a receive found.
    enum Received {
        /// A datagram of this many bytes from the client's address and port.
        case fromClient(Int)
        /// A datagram of this many bytes from another address or port (its transfer ID is
        /// unknown here); `source` holds the sender.
        case fromElsewhere(Int)
        /// Nothing within the tick.
        case nothing
        /// The socket failed with this `errno`.
        case failed(Int32)
    }

    private var descriptor: CInt
    private var client = sockaddr_storage()
    private let clientLength: socklen_t
    /// The sender of the last datagram received.
    private var source = sockaddr_storage()
    private var sourceLength: socklen_t = 0

    /// A UDP socket bound to `local` (port 0: a free port) that talks to `client`, whose
    /// receives wait at most `tick`.
    init(boundTo local: SocketAddress, client: SocketAddress, tick: Duration) throws(TFTPTransferSocketError) {
        let descriptor = socket(local.protocol.rawValue, CInt(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .init(operation: "socket", errno: errno) }
        let (seconds, attoseconds) = tick.components
        var timeout = timeval()
        timeout.tv_sec = numericCast(seconds)
        timeout.tv_usec = numericCast(max(attoseconds / 1_000_000_000_000, seconds == 0 ? 1000 : 0))
        let bound = local.withSockAddr { bind(descriptor, $0, socklen_t($1)) }
        guard bound == 0,
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0
        else {
            let error = errno
            closeSocketDescriptor(descriptor)
            throw .init(operation: bound == 0 ? "setsockopt" : "bind", errno: error)
        }
        self.descriptor = descriptor
        var storage = sockaddr_storage()
        let length = client.withSockAddr { address, size in
            withUnsafeMutableBytes(of: &storage) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: size))
            }
            return size
        }
        self.client = storage
        self.clientLength = socklen_t(length)
    }

    deinit {
        self.close()
    }

    /// Waits at most one tick for a datagram and reads it into `buffer`.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Received {
        guard self.descriptor >= 0 else { return .failed(EBADF) }
        while true {
            self.sourceLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = withUnsafeMutablePointer(to: &self.source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(self.descriptor, buffer.baseAddress, buffer.count, 0, $0, &self.sourceLength)
                }
            }
            if count >= 0 {
                return self.sourceIsClient ? .fromClient(count) : .fromElsewhere(count)
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .nothing
            // An ICMP error for an earlier datagram (the client's port closed): the client
            // has gone, which the transfer's timeout will notice.
            case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH: return .nothing
            default: return .failed(errno)
            }
        }
    }

    /// Sends each datagram `vectors` point at to the client, in order: several with one
    /// `sendmmsg` where the C library has it, else one `sendmsg` each. Returns `nil`, or the
    /// `errno` of the first that could not be sent.
    func sendToClient(_ vectors: UnsafeMutableBufferPointer<iovec>) -> Int32? {
        withUnsafeMutableBytes(of: &self.client) { name in
            if vectors.count > 1, let sendmmsg = multipleMessageSend {
                return withUnsafeTemporaryAllocation(of: MultipleMessageHeader.self, capacity: vectors.count) {
                    messages in
                    for index in vectors.indices {
                        var header = msghdr()
                        header.msg_name = name.baseAddress
                        header.msg_namelen = self.clientLength
                        header.msg_iov = vectors.baseAddress! + index
                        header.msg_iovlen = 1
                        messages[index] = MultipleMessageHeader(header: header, length: 0)
                    }
                    var sent = 0
                    while sent < vectors.count {
                        let count = sendmmsg(
                            self.descriptor,
                            UnsafeMutableRawPointer(messages.baseAddress! + sent),
                            CUnsignedInt(vectors.count - sent),
                            0
                        )
                        if count > 0 {
                            sent += Int(count)
                        } else if count < 0, errno == EINTR {
                            continue
                        } else {
                            return count < 0 ? errno : EIO
                        }
                    }
                    return nil
                }
            }
            for index in vectors.indices {
                if let failure = self.send(
                    vectors.baseAddress! + index,
                    to: name.baseAddress!,
                    length: self.clientLength
                ) {
                    return failure
                }
            }
            return nil
        }
    }

    /// Sends `bytes` as one datagram to the client.
    @discardableResult
    func sendToClient(_ bytes: [UInt8]) -> Int32? {
        withUnsafeMutableBytes(of: &self.client) { name in
            self.send(bytes, to: name.baseAddress!, length: self.clientLength)
        }
    }

    /// Sends `bytes` as one datagram to the sender of the last datagram received.
    @discardableResult
    func sendToSource(_ bytes: [UInt8]) -> Int32? {
        withUnsafeMutableBytes(of: &self.source) { name in
            self.send(bytes, to: name.baseAddress!, length: self.sourceLength)
        }
    }

    private func send(_ bytes: [UInt8], to name: UnsafeMutableRawPointer, length: socklen_t) -> Int32? {
        var bytes = bytes
        return bytes.withUnsafeMutableBytes { raw in
            var vector = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            return self.send(&vector, to: name, length: length)
        }
    }

    /// One `sendmsg`; a full send buffer waits (the socket is blocking), EINTR is retried.
    private func send(
        _ vector: UnsafeMutablePointer<iovec>,
        to name: UnsafeMutableRawPointer,
        length: socklen_t
    ) -> Int32? {
        guard self.descriptor >= 0 else { return EBADF }
        var header = msghdr()
        header.msg_name = name
        header.msg_namelen = length
        header.msg_iov = vector
        header.msg_iovlen = 1
        while sendmsg(self.descriptor, &header, 0) < 0 {
            guard errno == EINTR else { return errno }
        }
        return nil
    }

    /// Whether the last datagram came from the client's address and port.
    private var sourceIsClient: Bool {
        guard self.source.ss_family == self.client.ss_family else { return false }
        switch CInt(self.source.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: self.source) { source in
                withUnsafeBytes(of: self.client) { client in
                    let a = source.load(as: sockaddr_in.self)
                    let b = client.load(as: sockaddr_in.self)
                    return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr
                }
            }
        case AF_INET6:
            return withUnsafeBytes(of: self.source) { source in
                withUnsafeBytes(of: self.client) { client in
                    let a = source.load(as: sockaddr_in6.self)
                    let b = client.load(as: sockaddr_in6.self)
                    return a.sin6_port == b.sin6_port
                        && withUnsafeBytes(of: a.sin6_addr) { x in
                            withUnsafeBytes(of: b.sin6_addr) { y in x.elementsEqual(y) }
                        }
                }
            }
        default:
            return false
        }
    }

    /// Closes the socket. Idempotent.
    func close() {
        guard self.descriptor >= 0 else { return }
        closeSocketDescriptor(self.descriptor)
        self.descriptor = -1
    }
}

/// `struct mmsghdr` of Linux: Glibc's Swift module leaves `sendmmsg` out (it is a GNU
/// extension), so it is looked up at run time and called with this layout (a `msghdr` and
/// the bytes sent; Swift lays stored properties out in order, as C does).
private struct MultipleMessageHeader {
    var header: msghdr
    var length: CUnsignedInt
}

/// `sendmmsg(2)` from the C library, when it has one.
private let multipleMessageSend: (@convention(c) (CInt, UnsafeMutableRawPointer, CUnsignedInt, CInt) -> CInt)? = {
    #if os(Linux)
    guard MemoryLayout<MultipleMessageHeader>.offset(of: \.length) == MemoryLayout<msghdr>.size else { return nil }
    // RTLD_DEFAULT: the global symbol scope.
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sendmmsg") else { return nil }
    return unsafeBitCast(
        symbol,
        to: (@convention(c) (CInt, UnsafeMutableRawPointer, CUnsignedInt, CInt) -> CInt).self
    )
    #else
    return nil
    #endif
}()

/// A system call on a transfer socket failed.
struct TFTPTransferSocketError: Error, CustomStringConvertible {
    /// The call.
    var operation: String
    /// Its `errno`.
    var errno: Int32

    var description: String { "\(self.operation): \(String(cString: strerror(self.errno)))" }
}

// File scope: inside `TFTPTransferSocket`, `close` names its member.
private func closeSocketDescriptor(_ descriptor: CInt) {
    _ = close(descriptor)
}
