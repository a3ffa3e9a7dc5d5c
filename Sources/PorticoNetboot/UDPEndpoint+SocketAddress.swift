public import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension UDPEndpoint {
    /// The endpoint of an IPv4 socket address; `nil` for IPv6 and Unix domain addresses.
    public init?(_ address: SocketAddress) {
        guard case .v4(let v4) = address else { return nil }
        self.init(
            address: IPv4Address(rawValue: UInt32(bigEndian: v4.address.sin_addr.s_addr)),
            port: UInt16(bigEndian: v4.address.sin_port)
        )
    }
}

extension SocketAddress {
    /// The IPv4 socket address of `endpoint`.
    public init(_ endpoint: UDPEndpoint) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        address.sin_addr.s_addr = endpoint.address.rawValue.bigEndian
        self.init(address, host: "")
    }
}
