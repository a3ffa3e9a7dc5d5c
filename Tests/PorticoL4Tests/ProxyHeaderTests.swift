import NIOCore
import Testing

@testable import PorticoL4

@Suite struct ProxyHeaderEncodingTests {
    static func address(_ ip: String, _ port: Int) -> SocketAddress {
        try! SocketAddress(ipAddress: ip, port: port)
    }

    static func encode(_ header: ProxyHeader, _ version: ProxyProtocolVersion) -> [UInt8] {
        var buffer = ByteBuffer()
        header.write(version: version, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func v1TCP4() {
        let header = ProxyHeader(source: Self.address("192.0.2.1", 56_324), destination: Self.address("10.0.0.5", 443))
        #expect(
            String(decoding: Self.encode(header, .v1), as: UTF8.self) == "PROXY TCP4 192.0.2.1 10.0.0.5 56324 443\r\n"
        )
    }

    @Test func v1TCP6UsesCompressedText() {
        let header = ProxyHeader(source: Self.address("2001:db8::1", 1), destination: Self.address("::1", 65_535))
        #expect(String(decoding: Self.encode(header, .v1), as: UTF8.self) == "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n")
    }

    @Test func v1UnknownWithoutAddresses() {
        #expect(String(decoding: Self.encode(ProxyHeader(command: .proxy), .v1), as: UTF8.self) == "PROXY UNKNOWN\r\n")
    }

    @Test func v2IPv4Stream() {
        let header = ProxyHeader(source: Self.address("192.0.2.1", 0x1234), destination: Self.address("10.0.0.5", 443))
        let expected: [UInt8] =
            ProxyHeader.v2Signature + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 1, 10, 0, 0, 5, 0x12, 0x34, 0x01, 0xBB]
        #expect(Self.encode(header, .v2) == expected)
        #expect(header.encodedLength(version: .v2) == 28)
    }

    @Test func v2IPv6Datagram() {
        let header = ProxyHeader(
            source: Self.address("2001:db8::7", 53_000),
            destination: Self.address("fd00::53", 53),
            transport: .datagram
        )
        var expected = ProxyHeader.v2Signature + [0x21, 0x22, 0x00, 0x24]
        expected += [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [7]
        expected += [0xFD, 0x00] + [UInt8](repeating: 0, count: 13) + [0x53]
        expected += [0xCF, 0x08, 0x00, 0x35]
        #expect(Self.encode(header, .v2) == expected)
    }

    @Test func v2Local() {
        #expect(Self.encode(ProxyHeader(command: .local), .v2) == ProxyHeader.v2Signature + [0x20, 0x00, 0x00, 0x00])
    }

    @Test func mappedIPv4PairsBecomeIPv4() {
        let header = ProxyHeader(
            source: Self.address("::ffff:192.0.2.9", 1000),
            destination: Self.address("::ffff:10.0.0.1", 25)
        )
        #expect(
            String(decoding: Self.encode(header, .v1), as: UTF8.self) == "PROXY TCP4 192.0.2.9 10.0.0.1 1000 25\r\n"
        )
    }
}

@Suite struct ProxyHeaderDecodingTests {
    let decoder = ProxyHeaderDecoder(maximumV2Length: 256)

    static func address(_ ip: String, _ port: Int) -> SocketAddress {
        try! SocketAddress(ipAddress: ip, port: port)
    }

    /// Feeds `bytes` one at a time until a header comes out; returns it and the bytes after it.
    func decodeByteByByte(_ bytes: [UInt8]) throws -> (ProxyHeader?, [UInt8]) {
        var buffer = ByteBuffer()
        for (index, byte) in bytes.enumerated() {
            buffer.writeInteger(byte)
            if let header = try self.decoder.decode(&buffer) {
                #expect(buffer.readableBytes == 0)
                return (header, Array(bytes[(index + 1)...]))
            }
        }
        return (nil, Array(buffer.readableBytesView))
    }

    @Test func v1SplitAcrossReadsLeavesPayload() throws {
        let (header, rest) = try self.decodeByteByByte(
            Array("PROXY TCP4 203.0.113.7 198.51.100.1 4242 443\r\nEHLO".utf8)
        )
        #expect(
            header
                == ProxyHeader(
                    source: Self.address("203.0.113.7", 4242),
                    destination: Self.address("198.51.100.1", 443)
                )
        )
        #expect(rest == Array("EHLO".utf8))
    }

    @Test func v1TCP6AndUnknown() throws {
        var buffer = ByteBuffer(string: "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n")
        #expect(try self.decoder.decode(&buffer)?.source == Self.address("2001:db8::1", 1))
        buffer = ByteBuffer(string: "PROXY UNKNOWN ffff:f...f:ffff 1 2\r\nx")
        let unknown = try self.decoder.decode(&buffer)
        #expect(unknown == ProxyHeader(command: .proxy))
        #expect(buffer.readableBytes == 1)
    }

    @Test(arguments: [
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
    ])
    func v1MalformedIsRefused(_ line: String) {
        var buffer = ByteBuffer(string: line)
        #expect(throws: ProxyHeaderError.v1Malformed) { try self.decoder.decode(&buffer) }
    }

    @Test func v1IsBoundedTo107Bytes() throws {
        var buffer = ByteBuffer(string: "PROXY UNKNOWN " + String(repeating: "a", count: 92))
        #expect(buffer.readableBytes == 106)
        #expect(try self.decoder.decode(&buffer) == nil)
        buffer.writeString("a")
        #expect(throws: ProxyHeaderError.v1LineTooLong) { try self.decoder.decode(&buffer) }
        // Exactly 107 bytes with the CRLF is fine.
        var longest = ByteBuffer(string: "PROXY UNKNOWN " + String(repeating: "a", count: 91) + "\r\n")
        #expect(longest.readableBytes == 107)
        #expect(try self.decoder.decode(&longest) != nil)
    }

    @Test func v2WithTLVsSplitAcrossReads() throws {
        var bytes = ProxyHeader.v2Signature + [0x21, 0x11, 0x00, 0x0C + 7]
        bytes += [203, 0, 113, 7, 198, 51, 100, 1, 0x10, 0x92, 0x01, 0xBB]
        bytes += [0x04, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF]  // a NOOP TLV, skipped
        bytes += Array("payload".utf8)
        let (header, rest) = try self.decodeByteByByte(bytes)
        #expect(header?.source == Self.address("203.0.113.7", 4242))
        #expect(header?.destination == Self.address("198.51.100.1", 443))
        #expect(rest == Array("payload".utf8))
    }

    @Test func v2LocalAndUnspecified() throws {
        var buffer = ByteBuffer(
            bytes: ProxyHeader.v2Signature + [0x20, 0x11, 0x00, 0x0C] + [UInt8](repeating: 1, count: 12)
        )
        #expect(try self.decoder.decode(&buffer) == ProxyHeader(command: .local))
        #expect(buffer.readableBytes == 0)
        buffer = ByteBuffer(bytes: ProxyHeader.v2Signature + [0x21, 0x00, 0x00, 0x00])
        #expect(try self.decoder.decode(&buffer) == ProxyHeader(command: .proxy))
    }

    @Test func v2Refusals() {
        var wrongVersion = ByteBuffer(bytes: ProxyHeader.v2Signature + [0x11, 0x11, 0x00, 0x0C])
        #expect(throws: ProxyHeaderError.v2UnsupportedVersionOrCommand(0x11)) { try self.decoder.decode(&wrongVersion) }
        var tooLong = ByteBuffer(bytes: ProxyHeader.v2Signature + [0x21, 0x11, 0x01, 0x00])
        #expect(throws: ProxyHeaderError.v2TooLong(16 + 256)) { try self.decoder.decode(&tooLong) }
        var short = ByteBuffer(
            bytes: ProxyHeader.v2Signature + [0x21, 0x21, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12)
        )
        #expect(throws: ProxyHeaderError.v2AddressBlockTooShort) { try self.decoder.decode(&short) }
    }

    @Test func detection() {
        #expect(ProxyHeaderDecoder.detect(ByteBuffer(string: "PRO")) == .undecided)
        #expect(ProxyHeaderDecoder.detect(ByteBuffer(string: "PROXY ")) == .proxyHeader(.v1))
        #expect(ProxyHeaderDecoder.detect(ByteBuffer(string: "PROXZ")) == .notProxyHeader)
        #expect(ProxyHeaderDecoder.detect(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .notProxyHeader)
        #expect(ProxyHeaderDecoder.detect(ByteBuffer(bytes: [0x0D, 0x0A, 0x0D])) == .undecided)
        #expect(ProxyHeaderDecoder.detect(ByteBuffer(bytes: ProxyHeader.v2Signature)) == .proxyHeader(.v2))
        #expect(ProxyHeaderDecoder.detect(ByteBuffer(string: "\r\n\r\nX")) == .notProxyHeader)
        var garbage = ByteBuffer(string: "EHLO x\r\n")
        #expect(throws: ProxyHeaderError.notProxyHeader) { try self.decoder.decode(&garbage) }
    }

    @Test(arguments: [ProxyProtocolVersion.v1, .v2])
    func roundTrip(_ version: ProxyProtocolVersion) throws {
        for header in [
            ProxyHeader(source: Self.address("192.0.2.1", 1), destination: Self.address("192.0.2.2", 2)),
            ProxyHeader(source: Self.address("2001:db8::1", 65_535), destination: Self.address("2001:db8::2", 0)),
        ] {
            var buffer = ByteBuffer()
            header.write(version: version, to: &buffer)
            #expect(try self.decoder.decode(&buffer) == header)
            #expect(buffer.readableBytes == 0)
        }
    }
}
