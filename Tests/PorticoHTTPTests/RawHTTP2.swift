import NIOCore

/// One HTTP/2 frame as it is on the wire (RFC 9113 section 4.1).
struct RawFrame {
    static let data: UInt8 = 0x0
    static let headers: UInt8 = 0x1
    static let rstStream: UInt8 = 0x3
    static let settings: UInt8 = 0x4
    static let goAway: UInt8 = 0x7
    static let windowUpdate: UInt8 = 0x8
    static let endStream: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4

    var type: UInt8
    var flags: UInt8
    var stream: UInt32
    var payload: [UInt8]

    /// END_STREAM on DATA or HEADERS (the same bit is ACK on SETTINGS and PING).
    var endsStream: Bool { (self.type == Self.data || self.type == Self.headers) && self.flags & Self.endStream != 0 }

    /// A GOAWAY's last stream id and error code.
    var goAwayFields: (lastStream: UInt32, errorCode: UInt32)? {
        guard self.type == Self.goAway, self.payload.count >= 8 else { return nil }
        return (Self.uint32(self.payload[0..<4]) & 0x7fff_ffff, Self.uint32(self.payload[4..<8]))
    }

    static func encode(type: UInt8, flags: UInt8 = 0, stream: UInt32, payload: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(payload.count >> 16))
        buffer.writeInteger(UInt16(payload.count & 0xffff))
        buffer.writeInteger(type)
        buffer.writeInteger(flags)
        buffer.writeInteger(stream)
        buffer.writeBytes(payload)
        return buffer
    }

    /// A request's HEADERS frame (END_HEADERS; END_STREAM when it has no body).
    static func request(
        stream: UInt32,
        method: String = "GET",
        path: String,
        authority: String = "a.example.com",
        endStream: Bool = true,
        fields: [(String, String)] = []
    ) -> ByteBuffer {
        let block = RawHPACK.literals(
            [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)] + fields
        )
        let flags = Self.endHeaders | (endStream ? Self.endStream : 0)
        return Self.encode(type: Self.headers, flags: flags, stream: stream, payload: block)
    }

    static func uint32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
}

/// A frame-level HTTP/2 client over a ``RawClient`` (h2c with prior knowledge), for what a
/// client library hides: windows left unacknowledged, GOAWAY, the frames of a response.
extension RawClient {
    /// The connection preface and an empty SETTINGS frame (default settings), then the
    /// server's SETTINGS, acknowledged (its limits apply from then on, RFC 9113 section 6.5.3).
    /// `settings`: (identifier, value) pairs of the client's SETTINGS.
    @discardableResult
    func startHTTP2(settings ours: [(UInt16, UInt32)] = []) async throws -> [UInt16: UInt32] {
        try await self.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        let payload = ours.flatMap { [UInt8($0.0 >> 8), UInt8($0.0 & 0xff)] + RawFrame.bytes($0.1) }
        try await self.sendFrame(type: RawFrame.settings, stream: 0, payload: payload)
        var settings: [UInt16: UInt32] = [:]
        while true {
            let frame = try await self.readFrame()
            guard frame.type == RawFrame.settings && frame.flags & 0x1 == 0 else { continue }
            for offset in stride(from: 0, to: frame.payload.count - 5, by: 6) {
                let id = UInt16(frame.payload[offset]) << 8 | UInt16(frame.payload[offset + 1])
                settings[id] = RawFrame.uint32(frame.payload[(offset + 2)..<(offset + 6)])
            }
            break
        }
        try await self.sendFrame(type: RawFrame.settings, flags: 0x1, stream: 0)
        return settings
    }

    func sendFrame(type: UInt8, flags: UInt8 = 0, stream: UInt32, payload: [UInt8] = []) async throws {
        try await self.send(RawFrame.encode(type: type, flags: flags, stream: stream, payload: payload))
    }

    /// A request's HEADERS (END_HEADERS; END_STREAM when it has no body).
    func sendRequest(
        stream: UInt32,
        method: String = "GET",
        path: String,
        authority: String = "a.example.com",
        endStream: Bool = true
    ) async throws {
        try await self.send(
            RawFrame.request(stream: stream, method: method, path: path, authority: authority, endStream: endStream)
        )
    }

    /// Reads frames until `stream` ends (other streams' frames are skipped): its DATA as text,
    /// and the RST_STREAM or GOAWAY (of any stream) that ended the read instead, if one did.
    func readBody(stream: UInt32) async throws -> (text: String, interruptedBy: RawFrame?) {
        var body: [UInt8] = []
        while true {
            let frame = try await self.readFrame()
            if frame.type == RawFrame.rstStream || frame.type == RawFrame.goAway {
                return (String(decoding: body, as: UTF8.self), frame)
            }
            guard frame.stream == stream else { continue }
            if frame.type == RawFrame.data { body += frame.payload }
            if frame.endsStream { return (String(decoding: body, as: UTF8.self), nil) }
        }
    }

    func sendWindowUpdate(stream: UInt32, increment: UInt32) async throws {
        try await self.sendFrame(type: RawFrame.windowUpdate, stream: stream, payload: RawFrame.bytes(increment))
    }

    func readFrame() async throws -> RawFrame {
        let header = try await self.readBytes(9)
        let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        let payload = length == 0 ? [] : try await self.readBytes(length)
        return RawFrame(
            type: header[3],
            flags: header[4],
            stream: RawFrame.uint32(header[5..<9]) & 0x7fff_ffff,
            payload: payload
        )
    }

    /// Reads frames until one of `type` (the frames before it are skipped).
    func readFrame(ofType type: UInt8) async throws -> RawFrame {
        while true {
            let frame = try await self.readFrame()
            if frame.type == type { return frame }
        }
    }
}

/// HPACK (RFC 7541) literal fields without indexing and without Huffman coding: enough for a
/// server to decode, no table state to keep.
enum RawHPACK {
    static func literals(_ fields: [(String, String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in fields {
            bytes.append(0x00)  // literal header field without indexing, new name
            Self.string(name, into: &bytes)
            Self.string(value, into: &bytes)
        }
        return bytes
    }

    private static func string(_ text: String, into bytes: inout [UInt8]) {
        Self.integer(text.utf8.count, prefixBits: 7, into: &bytes)
        bytes.append(contentsOf: text.utf8)
    }

    private static func integer(_ value: Int, prefixBits: Int, into bytes: inout [UInt8]) {
        let limit = (1 << prefixBits) - 1
        guard value >= limit else { return bytes.append(UInt8(value)) }
        bytes.append(UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            bytes.append(UInt8(rest & 0x7f | 0x80))
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }
}
