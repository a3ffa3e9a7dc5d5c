public import NIOCore

/// A PROXY protocol header (HAProxy's v1 text line or v2 binary block): the address of the
/// client a connection or datagram comes from, and the address it was sent to.
///
/// Pure value; ``write(version:to:)`` encodes it and ``ProxyHeaderDecoder`` parses it.
public struct ProxyHeader: Sendable, Hashable {
    /// `proxy` carries a client; `local` is a connection made by the proxy itself (health checks).
    public enum Command: Sendable, Hashable {
        case local
        case proxy
    }

    /// What the carried addresses belong to (v2 distinguishes; v1 is always a stream).
    public enum Transport: Sendable, Hashable {
        case stream
        case datagram
    }

    /// LOCAL or PROXY.
    public var command: Command
    /// Stream (TCP) or datagram (UDP).
    public var transport: Transport
    /// The client. `nil` for LOCAL, v1 `UNKNOWN` and v2 `UNSPEC`/`UNIX`: use the connection's own addresses.
    public var source: SocketAddress?
    /// What the client connected to. `nil` exactly when `source` is.
    public var destination: SocketAddress?

    /// A PROXY command for a client; IPv4-mapped IPv6 pairs (a dual-stack listener) become IPv4.
    public init(source: SocketAddress, destination: SocketAddress, transport: Transport = .stream) {
        self.command = .proxy
        self.transport = transport
        if let source4 = Self.unmappedIPv4(source), let destination4 = Self.unmappedIPv4(destination) {
            self.source = source4
            self.destination = destination4
        } else {
            self.source = source
            self.destination = destination
        }
    }

    /// A header without addresses (v2 LOCAL, or a PROXY with unknown addresses).
    public init(command: Command, transport: Transport = .stream) {
        self.command = command
        self.transport = transport
        self.source = nil
        self.destination = nil
    }

    /// The v2 signature, the first 12 bytes of every v2 header.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// The v1 prefix, `PROXY `.
    public static let v1Prefix: [UInt8] = Array("PROXY ".utf8)

    /// Appends the encoded header. v1 has no datagram form and writes TCP4/TCP6 regardless;
    /// addresses of different families, or non-IP addresses, are written as unknown.
    public func write(version: ProxyProtocolVersion, to buffer: inout ByteBuffer) {
        switch version {
        case .v1: self.writeV1(to: &buffer)
        case .v2: self.writeV2(to: &buffer)
        }
    }

    /// The encoded length, to size buffers.
    public func encodedLength(version: ProxyProtocolVersion) -> Int {
        var buffer = ByteBuffer()
        self.write(version: version, to: &buffer)
        return buffer.readableBytes
    }

    private enum AddressPair {
        case ipv4(source: [UInt8], destination: [UInt8], sourcePort: Int, destinationPort: Int)
        case ipv6(source: [UInt8], destination: [UInt8], sourcePort: Int, destinationPort: Int)
    }

    private var addressPair: AddressPair? {
        guard self.command == .proxy, let source = self.source, let destination = self.destination,
            let sourcePort = source.port, let destinationPort = destination.port
        else { return nil }
        switch (source, destination) {
        case (.v4, .v4):
            return .ipv4(
                source: Self.bytes(of: source),
                destination: Self.bytes(of: destination),
                sourcePort: sourcePort,
                destinationPort: destinationPort
            )
        case (.v6, .v6):
            return .ipv6(
                source: Self.bytes(of: source),
                destination: Self.bytes(of: destination),
                sourcePort: sourcePort,
                destinationPort: destinationPort
            )
        default:
            return nil
        }
    }

    private func writeV1(to buffer: inout ByteBuffer) {
        guard let pair = self.addressPair, let source = self.source?.ipAddress,
            let destination = self.destination?.ipAddress
        else {
            buffer.writeString("PROXY UNKNOWN\r\n")
            return
        }
        switch pair {
        case .ipv4(_, _, let sourcePort, let destinationPort):
            buffer.writeString("PROXY TCP4 \(source) \(destination) \(sourcePort) \(destinationPort)\r\n")
        case .ipv6(_, _, let sourcePort, let destinationPort):
            buffer.writeString("PROXY TCP6 \(source) \(destination) \(sourcePort) \(destinationPort)\r\n")
        }
    }

    private func writeV2(to buffer: inout ByteBuffer) {
        buffer.writeBytes(Self.v2Signature)
        let transportBits: UInt8 = self.transport == .stream ? 0x01 : 0x02
        guard let pair = self.addressPair else {
            // LOCAL, or PROXY with unspecified addresses: no address block.
            buffer.writeInteger(self.command == .local ? UInt8(0x20) : UInt8(0x21))
            buffer.writeInteger(UInt8(0x00))
            buffer.writeInteger(UInt16(0))
            return
        }
        buffer.writeInteger(UInt8(0x21))
        switch pair {
        case .ipv4(let source, let destination, let sourcePort, let destinationPort):
            buffer.writeInteger(0x10 | transportBits)
            buffer.writeInteger(UInt16(12))
            buffer.writeBytes(source)
            buffer.writeBytes(destination)
            buffer.writeInteger(UInt16(truncatingIfNeeded: sourcePort))
            buffer.writeInteger(UInt16(truncatingIfNeeded: destinationPort))
        case .ipv6(let source, let destination, let sourcePort, let destinationPort):
            buffer.writeInteger(0x20 | transportBits)
            buffer.writeInteger(UInt16(36))
            buffer.writeBytes(source)
            buffer.writeBytes(destination)
            buffer.writeInteger(UInt16(truncatingIfNeeded: sourcePort))
            buffer.writeInteger(UInt16(truncatingIfNeeded: destinationPort))
        }
    }

    /// The 4 or 16 address bytes of an IP socket address, network order; empty for others.
    static func bytes(of address: SocketAddress) -> [UInt8] {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket:
            return []
        }
    }

    /// `::ffff:a.b.c.d` as the IPv4 address `a.b.c.d` (same port); `nil` for anything else.
    static func unmappedIPv4(_ address: SocketAddress) -> SocketAddress? {
        guard case .v6 = address, let port = address.port else { return nil }
        let bytes = Self.bytes(of: address)
        guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return try? SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes[12..<16]), port: port)
    }
}
