/// An IPv4 address and UDP port: where a datagram came from or is to be sent.
public struct UDPEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// The address.
    public var address: IPv4Address
    /// The port.
    public var port: UInt16

    /// `address:port`.
    public init(address: IPv4Address, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `a.b.c.d:port`.
    public var description: String { "\(self.address):\(self.port)" }
}
