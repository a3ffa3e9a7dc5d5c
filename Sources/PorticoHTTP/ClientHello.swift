/// What the fast lane needs of a TLS ClientHello before it decides who terminates the
/// connection: the server name (SNI, RFC 6066 section 3) and the offered application
/// protocols (ALPN, RFC 7301). Read from bytes peeked at the socket, so nothing is consumed:
/// a connection the lane does not take reaches NIO's TLS handler untouched.
struct ClientHelloSummary: Equatable {
    var serverName: String?
    var applicationProtocols: [String] = []

    enum Parse: Equatable {
        /// The first record is not whole yet: peek again when more arrived.
        case incomplete
        /// Not a ClientHello the lane can read (not TLS, or one split over several records):
        /// NIO's TLS handler gets the connection and answers it.
        case unreadable
        case hello(ClientHelloSummary)
    }

    /// Parses the first TLS record in `bytes` (RFC 8446 sections 4.1.2 and 5.1).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        var reader = Reader(bytes)
        // TLSPlaintext: type handshake (22), legacy version 3.x, length.
        guard let type = reader.byte() else { return .incomplete }
        guard type == 22 else { return .unreadable }
        guard let major = reader.byte(), reader.byte() != nil, let length = reader.uint16() else { return .incomplete }
        guard major == 3, length > 0, length <= 16_384 else { return .unreadable }
        guard var record = reader.slice(Int(length)) else { return .incomplete }
        // Handshake: type client_hello (1), 24-bit length, which must fit in this record
        // (a ClientHello split over records is legal but rare: NIO reads those).
        guard record.byte() == 1, let a = record.byte(), let b = record.uint16() else { return .unreadable }
        guard var hello = record.slice(Int(a) << 16 | Int(b)) else { return .unreadable }
        // legacy_version, random, legacy_session_id, cipher_suites, compression_methods.
        guard hello.skip(2 + 32), let session = hello.byte(), hello.skip(Int(session)),
            let suites = hello.uint16(), hello.skip(Int(suites)),
            let methods = hello.byte(), hello.skip(Int(methods))
        else { return .unreadable }
        var summary = ClientHelloSummary()
        // No extensions at all is allowed (an old client): no name, no protocols.
        guard hello.remaining > 0 else { return .hello(summary) }
        guard let total = hello.uint16(), var extensions = hello.slice(Int(total)) else { return .unreadable }
        while extensions.remaining > 0 {
            guard let kind = extensions.uint16(), let size = extensions.uint16(),
                var body = extensions.slice(Int(size))
            else { return .unreadable }
            switch kind {
            case 0:  // server_name: a list of (type, name); type 0 is a host name.
                guard let listLength = body.uint16(), var list = body.slice(Int(listLength)) else { return .unreadable }
                while list.remaining > 0 {
                    guard let nameType = list.byte(), let nameLength = list.uint16(),
                        let name = list.slice(Int(nameLength))
                    else { return .unreadable }
                    if nameType == 0, summary.serverName == nil { summary.serverName = name.string }
                }
            case 16:  // application_layer_protocol_negotiation: a list of 8-bit-length names.
                guard let listLength = body.uint16(), var list = body.slice(Int(listLength)) else { return .unreadable }
                while list.remaining > 0 {
                    guard let nameLength = list.byte(), let name = list.slice(Int(nameLength)) else {
                        return .unreadable
                    }
                    summary.applicationProtocols.append(name.string)
                }
            default:
                break
            }
        }
        return .hello(summary)
    }

    /// A cursor over bytes that never reads past its end.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset: Int
        let end: Int

        init(_ bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
            self.offset = 0
            self.end = bytes.count
        }

        private init(_ bytes: UnsafeRawBufferPointer, offset: Int, end: Int) {
            self.bytes = bytes
            self.offset = offset
            self.end = end
        }

        var remaining: Int { self.end - self.offset }

        var string: String {
            String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[self.offset..<self.end]), as: UTF8.self)
        }

        mutating func byte() -> UInt8? {
            guard self.offset < self.end else { return nil }
            defer { self.offset += 1 }
            return self.bytes[self.offset]
        }

        mutating func uint16() -> UInt16? {
            guard self.remaining >= 2 else { return nil }
            defer { self.offset += 2 }
            return UInt16(self.bytes[self.offset]) << 8 | UInt16(self.bytes[self.offset + 1])
        }

        mutating func skip(_ count: Int) -> Bool {
            guard count <= self.remaining else { return false }
            self.offset += count
            return true
        }

        /// The next `count` bytes as a reader of their own.
        mutating func slice(_ count: Int) -> Reader? {
            guard count <= self.remaining else { return nil }
            defer { self.offset += count }
            return Reader(self.bytes, offset: self.offset, end: self.offset + count)
        }
    }
}
