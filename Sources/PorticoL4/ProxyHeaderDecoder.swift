public import NIOCore

/// Why a PROXY header was refused.
public enum ProxyHeaderError: Error, Hashable {
    /// The bytes do not start with a PROXY v1 or v2 signature.
    case notProxyHeader
    /// No CRLF within the 107 bytes a v1 line may take.
    case v1LineTooLong
    /// The v1 line does not follow the grammar (protocol, addresses, ports).
    case v1Malformed
    /// v2 version nibble other than 2, or a command other than LOCAL/PROXY.
    case v2UnsupportedVersionOrCommand(UInt8)
    /// v2 header longer than the configured cap.
    case v2TooLong(Int)
    /// v2 address block shorter than its family needs.
    case v2AddressBlockTooShort
}

/// Incremental PROXY protocol v1/v2 parser (the version is detected).
///
/// Feed it the bytes received so far; it returns `nil` until a whole header is there, then
/// consumes exactly the header and leaves what follows in the buffer. It fails as soon as
/// the bytes cannot become a valid header, and never looks past its bounds: 107 bytes for
/// v1, ``maximumV2Length`` for v2 (TLVs are skipped).
public struct ProxyHeaderDecoder: Sendable, Hashable {
    /// The longest v1 line, CRLF included.
    public static let maximumV1Length = 107
    /// The largest v2 header accepted, 16-byte fixed part included.
    public var maximumV2Length: Int

    /// A decoder accepting v2 headers (with TLVs) of up to `maximumV2Length` bytes.
    public init(maximumV2Length: Int = 4096) {
        self.maximumV2Length = maximumV2Length
    }

    /// What the first bytes of a stream say about a PROXY header.
    public enum Detection: Sendable, Hashable {
        /// The bytes so far are a prefix of a signature; more are needed to tell.
        case undecided
        /// A v1 or v2 signature is present.
        case proxyHeader(ProxyProtocolVersion)
        /// Not a PROXY header.
        case notProxyHeader
    }

    /// Looks at the readable bytes without consuming them.
    public static func detect(_ buffer: ByteBuffer) -> Detection {
        let view = buffer.readableBytesView
        if let match = Self.matchPrefix(view, ProxyHeader.v1Prefix) {
            return match ? .proxyHeader(.v1) : .undecided
        }
        if let match = Self.matchPrefix(view, ProxyHeader.v2Signature) {
            return match ? .proxyHeader(.v2) : .undecided
        }
        return .notProxyHeader
    }

    /// `true` when the whole signature is there, `false` when the bytes so far are a proper
    /// prefix of it, `nil` on a mismatch.
    private static func matchPrefix(_ view: ByteBufferView, _ signature: [UInt8]) -> Bool? {
        let count = min(view.count, signature.count)
        var index = view.startIndex
        for position in 0..<count {
            if view[index] != signature[position] { return nil }
            index = view.index(after: index)
        }
        return count == signature.count
    }

    /// Parses a header from the start of `buffer`. Returns `nil` (consuming nothing) while
    /// incomplete; on success consumes the header.
    public func decode(_ buffer: inout ByteBuffer) throws(ProxyHeaderError) -> ProxyHeader? {
        switch Self.detect(buffer) {
        case .undecided:
            return nil
        case .notProxyHeader:
            throw .notProxyHeader
        case .proxyHeader(.v1):
            return try Self.decodeV1(&buffer)
        case .proxyHeader(.v2):
            return try self.decodeV2(&buffer)
        }
    }

    private static func decodeV1(_ buffer: inout ByteBuffer) throws(ProxyHeaderError) -> ProxyHeader? {
        let view = buffer.readableBytesView
        let searched = view.prefix(Self.maximumV1Length)
        guard let newline = searched.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count >= Self.maximumV1Length { throw .v1LineTooLong }
            return nil
        }
        let lineLength = newline - view.startIndex + 1
        guard lineLength >= 2, view[newline - 1] == UInt8(ascii: "\r") else { throw .v1Malformed }
        let line = view[view.startIndex..<(newline - 1)]
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count >= 2 else { throw .v1Malformed }
        let header: ProxyHeader
        switch String(decoding: fields[1], as: UTF8.self) {
        case "UNKNOWN":
            // Anything may follow UNKNOWN; the receiver uses the connection's own addresses.
            header = ProxyHeader(command: .proxy)
        case let family where family == "TCP4" || family == "TCP6":
            guard fields.count == 6,
                let sourcePort = Self.port(fields[4]),
                let destinationPort = Self.port(fields[5]),
                let source = Self.address(fields[2], port: sourcePort, ipv6: family == "TCP6"),
                let destination = Self.address(fields[3], port: destinationPort, ipv6: family == "TCP6")
            else { throw .v1Malformed }
            header = ProxyHeader(source: source, destination: destination)
        default:
            throw .v1Malformed
        }
        buffer.moveReaderIndex(forwardBy: lineLength)
        return header
    }

    private static func port(_ field: ByteBufferView.SubSequence) -> Int? {
        guard (1...5).contains(field.count), field.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        guard field.count == 1 || field.first != 0x30 else { return nil }
        let value = field.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return value <= 65_535 ? value : nil
    }

    private static func address(_ field: ByteBufferView.SubSequence, port: Int, ipv6: Bool) -> SocketAddress? {
        guard !field.isEmpty, field.count <= 45 else { return nil }
        let text = String(decoding: field, as: UTF8.self)
        // IPv4 literals only in dotted form; a TCP6 field must contain a colon.
        guard ipv6 == text.contains(":") else { return nil }
        guard let address = try? SocketAddress(ipAddress: text, port: port) else { return nil }
        switch address {
        case .v4 where !ipv6, .v6 where ipv6: return address
        default: return nil
        }
    }

    private func decodeV2(_ buffer: inout ByteBuffer) throws(ProxyHeaderError) -> ProxyHeader? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= 16,
            let versionAndCommand = buffer.getInteger(at: start + 12, as: UInt8.self),
            let familyAndTransport = buffer.getInteger(at: start + 13, as: UInt8.self),
            let length = buffer.getInteger(at: start + 14, as: UInt16.self)
        else { return nil }
        guard versionAndCommand == 0x20 || versionAndCommand == 0x21 else {
            throw .v2UnsupportedVersionOrCommand(versionAndCommand)
        }
        let total = 16 + Int(length)
        guard total <= self.maximumV2Length else { throw .v2TooLong(total) }
        guard buffer.readableBytes >= total else { return nil }
        let transport: ProxyHeader.Transport = familyAndTransport & 0x0F == 0x02 ? .datagram : .stream
        var header: ProxyHeader
        if versionAndCommand == 0x20 {
            header = ProxyHeader(command: .local, transport: transport)
        } else {
            switch familyAndTransport >> 4 {
            case 0x1:
                guard length >= 12 else { throw .v2AddressBlockTooShort }
                header = try Self.addresses(buffer, at: start + 16, size: 4, transport: transport)
            case 0x2:
                guard length >= 36 else { throw .v2AddressBlockTooShort }
                header = try Self.addresses(buffer, at: start + 16, size: 16, transport: transport)
            default:
                // UNSPEC and UNIX: nothing usable; the receiver keeps the connection's addresses.
                header = ProxyHeader(command: .proxy, transport: transport)
            }
        }
        buffer.moveReaderIndex(forwardBy: total)
        return header
    }

    private static func addresses(
        _ buffer: ByteBuffer,
        at offset: Int,
        size: Int,
        transport: ProxyHeader.Transport
    ) throws(ProxyHeaderError) -> ProxyHeader {
        guard let source = buffer.getSlice(at: offset, length: size),
            let destination = buffer.getSlice(at: offset + size, length: size),
            let sourcePort = buffer.getInteger(at: offset + 2 * size, as: UInt16.self),
            let destinationPort = buffer.getInteger(at: offset + 2 * size + 2, as: UInt16.self),
            let sourceAddress = try? SocketAddress(packedIPAddress: source, port: Int(sourcePort)),
            let destinationAddress = try? SocketAddress(packedIPAddress: destination, port: Int(destinationPort))
        else { throw .v2AddressBlockTooShort }
        return ProxyHeader(source: sourceAddress, destination: destinationAddress, transport: transport)
    }
}
