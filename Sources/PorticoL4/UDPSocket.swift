import CPorticoUDP
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// UDP sockets made here rather than by NIO's bootstrap, so that ``DatagramSender`` knows
/// their descriptor; NIO then adopts them (`DatagramBootstrap.withBoundSocket`) to read.
/// Linux only (``DatagramSender/isSupported``).
enum UDPSocket {
    /// A non-blocking UDP socket bound to `address`. With `freeBind`, IP_FREEBIND or
    /// IPV6_FREEBIND is asked for first; its failure is reported to `freeBindFailed` and is
    /// not fatal (the address must then be present).
    static func bound(
        to address: SocketAddress,
        freeBind: Bool,
        freeBindFailed: (IOError) -> Void = { _ in }
    ) throws -> CInt {
        let descriptor = try Self.open(family: address.protocol)
        do {
            if freeBind, portico_udp_set_freebind(descriptor, address.protocol.rawValue) != 0 {
                freeBindFailed(IOError(errnoCode: errno, reason: "setsockopt(FREEBIND)"))
            }
            let status = address.withSockAddr { pointer, size in
                bind(descriptor, pointer, socklen_t(size))
            }
            guard status == 0 else { throw IOError(errnoCode: errno, reason: "bind(\(address))") }
            return descriptor
        } catch {
            close(descriptor)
            throw error
        }
    }

    /// A non-blocking UDP socket connected to `address` (on an ephemeral local port).
    static func connected(to address: SocketAddress) throws -> CInt {
        let descriptor = try Self.open(family: address.protocol)
        let status = address.withSockAddr { pointer, size in
            connect(descriptor, pointer, socklen_t(size))
        }
        guard status == 0 else {
            let code = errno
            close(descriptor)
            throw IOError(errnoCode: code, reason: "connect(\(address))")
        }
        return descriptor
    }

    private static func open(family: NIOBSDSocket.ProtocolFamily) throws -> CInt {
        #if os(Linux)
        let type = CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        let descriptor = socket(family.rawValue, type, 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        return descriptor
        #else
        throw IOError(errnoCode: ENOSYS, reason: "socket")
        #endif
    }
}
