public import NIOCore
public import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Portico's own HTTP/1.1 codec for the proxy path. It replaces NIOHTTP1's decoders and
// encoders (llhttp behind a ByteToMessageHandler, then a re-encode per side): the handlers that
// own a connection (ProxyHandler, UpstreamConnection) call it directly on the bytes they read,
// so a proxied request costs no extra pipeline hops, no NIOAny boxing of message parts and no
// parser callbacks. It still produces NIOHTTP1's value types (HTTPRequestHead, HTTPHeaders):
// the proxy logic and the HTTP/2 path share them.
//
// Parsing follows RFC 9112 strictly where laxness enables request smuggling: field names are
// tokens directly followed by the colon, obsolete line folding and control characters are
// refused, Content-Length must be digits, chunk sizes are bounded hex. A bare LF ends a line
// (RFC 9112 2.2 allows it); heads are re-serialised with CRLF, so upstreams never see one.

/// Why an HTTP/1 message could not be parsed.
enum HTTP1ParseError: Error, Equatable, CustomStringConvertible {
    /// The request line is longer than the limit (414).
    case requestLineTooLong
    /// The head (or one field line, or the trailer section) is larger than the limit (431).
    case headerSectionTooLarge
    case invalidRequestLine
    case invalidStatusLine
    case unsupportedVersion
    case invalidFieldName
    case invalidFieldValue
    case obsoleteLineFolding
    case invalidContentLength
    case invalidChunk
    /// A response body framed by a transfer coding other than `chunked` alone: the proxy
    /// cannot decode it, and relabelling it would hand the client coded bytes as the content.
    case unsupportedTransferCoding

    var description: String {
        switch self {
        case .requestLineTooLong: "request line too long"
        case .headerSectionTooLarge: "header section too large"
        case .invalidRequestLine: "invalid request line"
        case .invalidStatusLine: "invalid status line"
        case .unsupportedVersion: "unsupported HTTP version"
        case .invalidFieldName: "invalid header field name"
        case .invalidFieldValue: "invalid header field value"
        case .obsoleteLineFolding: "obsolete line folding in a header field"
        case .invalidContentLength: "invalid Content-Length"
        case .invalidChunk: "invalid chunked encoding"
        case .unsupportedTransferCoding: "a Transfer-Encoding other than chunked"
        }
    }
}

/// Size limits of a message head.
struct HTTP1HeadLimits {
    var maxRequestLineSize = 8192
    var maxFieldSize = 8192
    var maxHeadSize = 65536
}

/// How a message body is delimited (RFC 9112 6.3).
enum HTTP1BodyFraming: Equatable {
    case none
    case contentLength(Int)
    case chunked
    /// Until the connection closes (responses only).
    case untilClose
}

/// Byte classes of RFC 9110 5.6.2 (tchar) and 5.5 (field-vchar), as one lookup table (also
/// used for HTTP/2 request blocks, HTTP2RequestBlock.swift).
enum ByteClass {
    static let token: UInt8 = 1
    static let fieldValue: UInt8 = 2
    static let target: UInt8 = 4
    /// A token byte other than an uppercase letter (HTTP/2 field names, RFC 9113 8.2.1).
    static let lowercaseToken: UInt8 = 8

    static let table: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256)
        for byte in 0..<256 {
            var bits: UInt8 = 0
            let scalar = UInt8(byte)
            switch scalar {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                bits |= token
            default:
                if "!#$%&'*+-.^_`|~".utf8.contains(scalar) { bits |= token }
            }
            if bits & token != 0 && !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(scalar) {
                bits |= lowercaseToken
            }
            // VCHAR, obs-text, SP and HTAB.
            if (0x21...0x7E).contains(scalar) || scalar >= 0x80 || scalar == 0x20 || scalar == 0x09 {
                bits |= fieldValue
            }
            // Anything visible (no controls, no space) may appear in a request target.
            if (0x21...0x7E).contains(scalar) || scalar >= 0x80 { bits |= target }
            table[byte] = bits
        }
        return table
    }()
}

/// Scans one head (start line + fields + empty line) out of `bytes`; shared by both decoders.
private struct HeadScanner {
    /// A parsed head: the start line's bytes and the fields.
    struct Head {
        var startLine: Range<Int>
        var headers: HTTPHeaders
        /// Bytes consumed, including leading empty lines and the final empty line.
        var length: Int
        /// With `dropHopByHop`: the framing fields and `Connection` options read on the way.
        var framing = FramingFields()
        var connection = ConnectionOptions()
        /// With `raw`: the kept field lines, each ended by CR LF (`headers` is then empty).
        var rawFields: ByteBuffer?
        /// With `rawRequest`, when the fields could stay bytes: what they say.
        var requestFacts: RequestHeadFacts?
    }

    /// `nil` when the head is not complete yet. `firstLineLimit` bounds the start line (414 for
    /// requests); `firstLineError` is thrown when it is exceeded. With `dropHopByHop` (a
    /// response on its way to the client) the hop-by-hop fields (RFC 9110 7.6.1: `Connection`,
    /// what it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Upgrade`) are left out
    /// before any string is made of them, and the framing fields are read in the same pass.
    /// With `raw` as well, the kept lines are copied as bytes into `rawFields` and no string is
    /// made at all; `rawFields` is `nil` when `Connection` names other fields (then scan again
    /// without `raw`).
    static func scan(
        _ bytes: UnsafeRawBufferPointer,
        limits: HTTP1HeadLimits,
        firstLineLimit: Int,
        firstLineError: HTTP1ParseError,
        dropHopByHop: Bool = false,
        raw: Bool = false,
        rawRequest: Bool = false,
        fieldStorage: inout ByteBuffer
    ) throws -> Head? {
        let count = bytes.count
        var position = 0
        // RFC 9112 2.2: ignore empty lines before the start line. A CR followed by anything but
        // LF stays, and fails as part of the start line.
        while position < count {
            if bytes[position] == 0x0A {
                position += 1
            } else if bytes[position] == 0x0D, position + 1 < count, bytes[position + 1] == 0x0A {
                position += 2
            } else if bytes[position] == 0x0D, position + 1 == count {
                return nil
            } else {
                break
            }
        }
        let headStart = position
        guard let firstEnd = Self.lineEnd(bytes, from: position) else {
            if count - headStart > firstLineLimit { throw firstLineError }
            if count - headStart > limits.maxHeadSize { throw HTTP1ParseError.headerSectionTooLarge }
            return nil
        }
        if firstEnd.contentEnd - headStart > firstLineLimit { throw firstLineError }
        let startLine = headStart..<firstEnd.contentEnd
        position = firstEnd.next

        // Find the end of the head before building anything, so an incomplete head costs one
        // scan; then walk its lines again (no array of line ranges to allocate).
        let fieldsStart = position
        var fieldCount = 0
        while true {
            guard let end = Self.lineEnd(bytes, from: position) else {
                if count - headStart > limits.maxHeadSize { throw HTTP1ParseError.headerSectionTooLarge }
                return nil
            }
            if end.contentEnd == position {
                position = end.next
                break
            }
            if end.contentEnd - position > limits.maxFieldSize { throw HTTP1ParseError.headerSectionTooLarge }
            fieldCount += 1
            position = end.next
            if position - headStart > limits.maxHeadSize { throw HTTP1ParseError.headerSectionTooLarge }
        }
        if position - headStart > limits.maxHeadSize { throw HTTP1ParseError.headerSectionTooLarge }

        if rawRequest,
            let head = try Self.rawRequest(
                bytes,
                startLine,
                fieldsStart,
                fieldCount,
                length: position,
                into: &fieldStorage
            )
        {
            return head
        }
        var facts = ResponseFacts()
        if raw {
            // One copy of the kept lines into space reserved once (a bare LF end grows by a CR).
            var rawFields = fieldStorage
            fieldStorage = ByteBuffer()  // (the one reference: written in place)
            rawFields.rewind()
            let reserve = position - fieldsStart + fieldCount
            try rawFields.writeWithUnsafeMutableBytes(minimumWritableBytes: reserve) { out in
                var at = 0
                var line = fieldsStart
                for _ in 0..<fieldCount {
                    let end = Self.lineEnd(bytes, from: line)!
                    let (name, value) = try Self.fieldRanges(bytes, start: line, end: end.contentEnd)
                    line = end.next
                    guard facts.keeps(bytes, name: name, value: value, raw: true) else { continue }
                    Self.copyLine(bytes, name, value, into: out, at: &at)
                }
                return at
            }
            var head = Head(startLine: startLine, headers: HTTPHeaders(), length: position)
            head.framing = facts.framing
            head.connection = facts.connection
            head.rawFields = facts.connection.namesHeaders ? nil : rawFields
            fieldStorage = rawFields
            return head
        }
        // Names are validated tokens (ASCII), so the fields go in as one array instead of
        // through `add`, which checks every name again.
        var fields: [(String, String)] = []
        fields.reserveCapacity(fieldCount)
        var line = fieldsStart
        for _ in 0..<fieldCount {
            let end = Self.lineEnd(bytes, from: line)!
            let (name, value) = try Self.fieldRanges(bytes, start: line, end: end.contentEnd)
            line = end.next
            if dropHopByHop && !facts.keeps(bytes, name: name, value: value, raw: false) { continue }
            fields.append((Self.string(bytes, name), Self.string(bytes, value)))
        }
        if facts.connection.namesHeaders {
            // Rare: `Connection` names other fields, which go too.
            var named: [String] = []
            for value in facts.connectionValues {
                value.forEachListElement { token in
                    if ConnectionOptions.namesHeader(token) { named.append(token.lowercased()) }
                }
            }
            fields.removeAll { field in named.contains { $0.utf8.elementsEqual(field.0.lowercased().utf8) } }
        }
        var head = Head(startLine: startLine, headers: HTTPHeaders(fields), length: position)
        head.framing = facts.framing
        head.connection = facts.connection
        return head
    }

    /// A request head whose field lines go to the upstream as bytes (see
    /// ``HTTP1RequestDecoder/passFieldsRaw``): HTTP/1.1, and no field that the proxy must
    /// change or read as a string beyond `Host` and `Content-Length`. `nil` when some field
    /// needs the string path (``RequestField/needsStrings``).
    private static func rawRequest(
        _ bytes: UnsafeRawBufferPointer,
        _ startLine: Range<Int>,
        _ fieldsStart: Int,
        _ fieldCount: Int,
        length: Int,
        into fieldStorage: inout ByteBuffer
    ) throws -> Head? {
        guard startLine.count > 9, Self.name(bytes, (startLine.upperBound - 9)..<startLine.upperBound, is: " http/1.1")
        else { return nil }
        var facts = RequestHeadFacts()
        var rawFields = fieldStorage
        fieldStorage = ByteBuffer()  // (the one reference: written in place)
        rawFields.rewind()
        // Room for the proxy's own fields (X-Forwarded-*), appended without growing.
        let reserve = length - fieldsStart + fieldCount + 256
        var kept = true
        try rawFields.writeWithUnsafeMutableBytes(minimumWritableBytes: reserve) { out in
            var at = 0
            var line = fieldsStart
            for _ in 0..<fieldCount {
                let end = Self.lineEnd(bytes, from: line)!
                let (name, value) = try Self.fieldRanges(bytes, start: line, end: end.contentEnd)
                line = end.next
                switch Self.requestField(bytes, name) {
                case .host:
                    if facts.host == nil { facts.host = Self.string(bytes, value) }
                    facts.hostCount += 1
                case .contentLength:
                    if !FramingFields.readContentLength(Self.string(bytes, value), into: &facts.contentLength) {
                        facts.conflictingContentLength = true
                    }
                case .connection:
                    // Only the usual values; anything else is read by the string path.
                    if value.count == 10 && Self.name(bytes, value, is: "keep-alive") {
                        facts.connection.keepAlive = true
                    } else if value.count == 5 && Self.name(bytes, value, is: "close") {
                        facts.connection.close = true
                    } else {
                        kept = false
                        return 0
                    }
                    continue
                case .hopByHop:
                    continue
                case .needsStrings:
                    kept = false
                    return 0
                case .other:
                    break
                }
                Self.copyLine(bytes, name, value, into: out, at: &at)
            }
            return at
        }
        fieldStorage = rawFields
        guard kept else { return nil }
        var head = Head(startLine: startLine, headers: HTTPHeaders(), length: length)
        head.rawFields = rawFields
        head.requestFacts = facts
        return head
    }

    /// Whether `bytes` begin with `HTTP/1.1 ` (a status line's version and its space).
    static func startsWithHTTP11(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 9 else { return false }
        let expected: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
            0x48, 0x54, 0x54, 0x50, 0x2F, 0x31, 0x2E, 0x31, 0x20
        )
        return withUnsafeBytes(of: expected) { $0.elementsEqual(UnsafeRawBufferPointer(rebasing: bytes[0..<9])) }
    }

    /// Copies one field line (name to the end of the value) to `out` at `at`, ended by CR LF.
    @inline(__always)
    private static func copyLine(
        _ bytes: UnsafeRawBufferPointer,
        _ name: Range<Int>,
        _ value: Range<Int>,
        into out: UnsafeMutableRawBufferPointer,
        at: inout Int
    ) {
        let length = value.upperBound - name.lowerBound
        (out.baseAddress! + at).copyMemory(from: bytes.baseAddress! + name.lowerBound, byteCount: length)
        out[at + length] = 0x0D
        out[at + length + 1] = 0x0A
        at += length + 2
    }

    /// The request fields ``rawRequest(_:_:_:_:length:)`` looks at. `needsStrings`: framing,
    /// hop-by-hop fields the proxy acts on, and the fields it replaces or merges
    /// (X-Forwarded-*, X-Real-IP, SSL-Client-Verify) or answers (Expect).
    private enum RequestField {
        case host, contentLength, connection, hopByHop, needsStrings, other
    }

    private static func requestField(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> RequestField {
        switch name.count {
        case 2 where Self.name(bytes, name, is: "te"): return .needsStrings
        case 4 where Self.name(bytes, name, is: "host"): return .host
        case 6 where Self.name(bytes, name, is: "expect"): return .needsStrings
        case 7 where Self.name(bytes, name, is: "trailer") || Self.name(bytes, name, is: "upgrade"):
            return .needsStrings
        case 9 where Self.name(bytes, name, is: "x-real-ip"): return .needsStrings
        case 10 where Self.name(bytes, name, is: "connection"): return .connection
        case 10 where Self.name(bytes, name, is: "keep-alive"): return .hopByHop
        case 14 where Self.name(bytes, name, is: "content-length"): return .contentLength
        case 15 where Self.name(bytes, name, is: "x-forwarded-for"): return .needsStrings
        case 16 where Self.name(bytes, name, is: "proxy-connection"): return .hopByHop
        case 16 where Self.name(bytes, name, is: "x-forwarded-host") || Self.name(bytes, name, is: "x-forwarded-port"):
            return .needsStrings
        case 17
        where Self.name(bytes, name, is: "transfer-encoding") || Self.name(bytes, name, is: "x-forwarded-proto")
            || Self.name(bytes, name, is: "ssl-client-verify"):
            return .needsStrings
        default: return .other
        }
    }

    /// The fields of lines passed as bytes (each `name:[OWS]value` CR LF, already validated),
    /// for a policy that needs them as strings after all.
    static func fields(ofRaw buffer: ByteBuffer) -> HTTPHeaders {
        buffer.withUnsafeReadableBytes { bytes in
            var fields: [(String, String)] = []
            var line = 0
            while line < bytes.count, let end = Self.lineEnd(bytes, from: line) {
                if let (name, value) = try? Self.fieldRanges(bytes, start: line, end: end.contentEnd) {
                    fields.append((Self.string(bytes, name), Self.string(bytes, value)))
                }
                line = end.next
            }
            return HTTPHeaders(fields)
        }
    }

    /// What a response's fields say about framing and the connection, read as they are scanned.
    private struct ResponseFacts {
        var framing = FramingFields()
        var connection = ConnectionOptions()
        /// The `Connection` values, kept only once one names another field.
        var connectionValues: [String] = []

        /// Reads one field; whether it stays in the head (not hop-by-hop). `Transfer-Encoding`
        /// does not stay in `raw` fields: the encoder writes its own `chunked` (as it replaces
        /// the field when it encodes from strings), so `chunked,` or an empty field never reach
        /// the client as they came.
        @inline(__always)
        mutating func keeps(_ bytes: UnsafeRawBufferPointer, name: Range<Int>, value: Range<Int>, raw: Bool) -> Bool {
            switch HeadScanner.responseField(bytes, name) {
            case .connection:
                // The usual values without making a string of them.
                if value.count == 10 && HeadScanner.name(bytes, value, is: "keep-alive") {
                    self.connection.keepAlive = true
                } else if value.count == 5 && HeadScanner.name(bytes, value, is: "close") {
                    self.connection.close = true
                } else {
                    let text = HeadScanner.string(bytes, value)
                    self.connection.read(text)
                    if self.connection.namesHeaders { self.connectionValues.append(text) }
                }
                return false
            case .hopByHop:
                return false
            case .contentLength:
                self.framing.readContentLength(HeadScanner.string(bytes, value))
            case .transferEncoding:
                self.framing.readTransferEncoding(HeadScanner.string(bytes, value))
                return !raw
            case .other:
                break
            }
            return true
        }
    }

    /// The response fields ``scan(_:limits:firstLineLimit:firstLineError:dropHopByHop:raw:)`` looks at.
    private enum ResponseField {
        case connection, hopByHop, contentLength, transferEncoding, other
    }

    private static func responseField(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> ResponseField {
        switch name.count {
        case 2 where Self.name(bytes, name, is: "te"): return .hopByHop
        case 7 where Self.name(bytes, name, is: "trailer") || Self.name(bytes, name, is: "upgrade"): return .hopByHop
        case 10 where Self.name(bytes, name, is: "connection"): return .connection
        case 10 where Self.name(bytes, name, is: "keep-alive"): return .hopByHop
        case 14 where Self.name(bytes, name, is: "content-length"): return .contentLength
        case 16 where Self.name(bytes, name, is: "proxy-connection"): return .hopByHop
        case 17 where Self.name(bytes, name, is: "transfer-encoding"): return .transferEncoding
        default: return .other
        }
    }

    /// Whether the token at `range` is `lowercase` in any case (`range` has its length).
    @inline(__always)
    private static func name(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, is lowercase: StaticString) -> Bool {
        lowercase.withUTF8Buffer { expected in
            var index = 0
            for position in range {
                if bytes[position] | 0x20 != expected[index] { return false }
                index += 1
            }
            return true
        }
    }

    @inline(__always)
    private static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// Parses `name: value` (OWS trimmed) from one field line.
    static func field(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) throws -> (String, String) {
        let (name, value) = try Self.fieldRanges(bytes, start: start, end: end)
        return (Self.string(bytes, name), Self.string(bytes, value))
    }

    /// Where the name and the value (OWS trimmed) of one field line are, both validated.
    static func fieldRanges(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) throws -> (Range<Int>, Range<Int>) {
        let table = ByteClass.table
        let first = bytes[start]
        if first == 0x20 || first == 0x09 { throw HTTP1ParseError.obsoleteLineFolding }
        var colon = start
        while colon < end, bytes[colon] != UInt8(ascii: ":") {
            guard table[Int(bytes[colon])] & ByteClass.token != 0 else { throw HTTP1ParseError.invalidFieldName }
            colon += 1
        }
        guard colon < end, colon > start else { throw HTTP1ParseError.invalidFieldName }
        var valueStart = colon + 1
        var valueEnd = end
        while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
        while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
        var index = valueStart
        while index < valueEnd {
            guard table[Int(bytes[index])] & ByteClass.fieldValue != 0 else { throw HTTP1ParseError.invalidFieldValue }
            index += 1
        }
        return (start..<colon, valueStart..<valueEnd)
    }

    /// The end of the line starting at `from`: where its content ends (before CR LF or LF)
    /// and where the next line starts. A CR not followed by LF is refused where the line is
    /// parsed (it is not a field-value byte), so it is simply content here.
    @inline(__always)
    static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int) -> (contentEnd: Int, next: Int)? {
        // memchr: the C library's vectorised search (a generic `firstIndex(of:)` loop was
        // ~1.5% of the CPU of a proxied request).
        guard from < bytes.count, let base = bytes.baseAddress,
            let newline = memchr(base + from, 0x0A, bytes.count - from)
        else { return nil }
        let lf = base.distance(to: UnsafeRawPointer(newline))
        let contentEnd = lf > from && bytes[lf - 1] == 0x0D ? lf - 1 : lf
        return (contentEnd, lf + 1)
    }

    /// `HTTP/1.x` at `range`: the minor version (a major version other than 1 is refused).
    static func version(
        _ bytes: UnsafeRawBufferPointer,
        _ range: Range<Int>,
        error: HTTP1ParseError
    ) throws -> HTTPVersion {
        guard range.count == 8 else { throw error }
        let base = range.lowerBound
        guard bytes[base] == UInt8(ascii: "H"), bytes[base + 1] == UInt8(ascii: "T"),
            bytes[base + 2] == UInt8(ascii: "T"), bytes[base + 3] == UInt8(ascii: "P"),
            bytes[base + 4] == UInt8(ascii: "/"), bytes[base + 6] == UInt8(ascii: "."),
            let major = Self.digit(bytes[base + 5]), let minor = Self.digit(bytes[base + 7])
        else { throw error }
        guard major == 1 else { throw HTTP1ParseError.unsupportedVersion }
        return HTTPVersion(major: 1, minor: minor)
    }

    @inline(__always)
    static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }
}

/// Decodes the chunked transfer coding (RFC 9112 7.1) into body slices and trailers.
private struct ChunkedDecoder {
    enum State {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
    }

    enum Output {
        case body(ByteBuffer)
        case end(HTTPHeaders?)
    }

    var state = State.size
    let limits: HTTP1HeadLimits

    /// The next part, or `nil` when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws -> Output? {
        while true {
            switch self.state {
            case .size:
                guard let line = try Self.line(&buffer, limit: self.limits.maxFieldSize) else { return nil }
                let size = try Self.chunkSize(line)
                self.state = size == 0 ? .trailers : .data(remaining: size)
            case .data(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let length = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: length)!
                self.state = remaining == length ? .dataEnd : .data(remaining: remaining - length)
                return .body(slice)
            case .dataEnd:
                guard let line = try Self.line(&buffer, limit: 1) else { return nil }
                guard line.readableBytes == 0 else { throw HTTP1ParseError.invalidChunk }
                self.state = .size
            case .trailers:
                let consumed: (Int, HTTPHeaders?)? = try buffer.withUnsafeReadableBytes { bytes in
                    var position = 0
                    var trailers: HTTPHeaders?
                    while true {
                        guard let end = HeadScanner.lineEnd(bytes, from: position) else {
                            if bytes.count > self.limits.maxHeadSize { throw HTTP1ParseError.headerSectionTooLarge }
                            return nil
                        }
                        if end.contentEnd == position { return (end.next, trailers) }
                        if end.next > self.limits.maxHeadSize { throw HTTP1ParseError.headerSectionTooLarge }
                        let (name, value) = try HeadScanner.field(bytes, start: position, end: end.contentEnd)
                        if trailers == nil { trailers = HTTPHeaders() }
                        trailers!.add(name: name, value: value)
                        position = end.next
                    }
                }
                guard let (length, trailers) = consumed else { return nil }
                buffer.moveReaderIndex(forwardBy: length)
                self.state = .size
                return .end(trailers)
            }
        }
    }

    /// One line (without its CR LF) consumed from `buffer`, or `nil` when incomplete.
    private static func line(_ buffer: inout ByteBuffer, limit: Int) throws -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: 0x0A) else {
            if view.count > limit + 2 { throw HTTP1ParseError.invalidChunk }
            return nil
        }
        var length = newline - view.startIndex
        let next = length + 1
        if length > 0, view[newline - 1] == 0x0D { length -= 1 }
        if length > limit { throw HTTP1ParseError.invalidChunk }
        let line = buffer.getSlice(at: buffer.readerIndex, length: length)!
        buffer.moveReaderIndex(forwardBy: next)
        return line
    }

    /// `1*HEXDIG [ chunk-ext ]`; the extensions are ignored (RFC 9112 7.1.1).
    private static func chunkSize(_ line: ByteBuffer) throws -> Int {
        var size = 0
        var digits = 0
        for byte in line.readableBytesView {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                guard digits > 0 else { throw HTTP1ParseError.invalidChunk }
                return size
            default:
                throw HTTP1ParseError.invalidChunk
            }
            digits += 1
            // 15 hex digits: far beyond any real chunk, and no overflow.
            guard digits <= 15 else { throw HTTP1ParseError.invalidChunk }
            size = size << 4 | value
        }
        guard digits > 0 else { throw HTTP1ParseError.invalidChunk }
        return size
    }
}

/// An upstream response's fields as bytes (lines ended by CR LF, hop-by-hop fields and
/// `Transfer-Encoding` left out), and whether its body is chunked.
struct RawResponseFields {
    var bytes: ByteBuffer
    var chunked: Bool
}

/// The body framing fields of a head, read once.
struct FramingFields {
    var contentLength: Int?
    var invalidContentLength = false
    var transferEncoding = false
    /// `chunked` is the last transfer coding.
    var chunkedLast = false
    /// The codings named, over all `Transfer-Encoding` fields.
    var codings = 0

    init() {}

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch name.utf8.count {
            case 14 where name.equalsLowercaseToken("content-length"): self.readContentLength(value)
            case 17 where name.equalsLowercaseToken("transfer-encoding"): self.readTransferEncoding(value)
            default: continue
            }
        }
    }

    /// One `Content-Length` field.
    mutating func readContentLength(_ value: String) {
        if !Self.readContentLength(value, into: &self.contentLength) { self.invalidContentLength = true }
    }

    /// One `Transfer-Encoding` field (the last one's last coding decides).
    mutating func readTransferEncoding(_ value: String) {
        self.transferEncoding = true
        var chunked = false
        value.forEachListElement {
            chunked = $0.equalsLowercaseToken("chunked")
            self.codings += 1
        }
        self.chunkedLast = chunked
    }

    /// What a proxy can pass on unchanged: a length alone, or `chunked` alone (which it
    /// decodes and encodes again).
    var isPlain: Bool {
        guard !self.invalidContentLength else { return false }
        if self.transferEncoding { return self.contentLength == nil && self.codings == 1 && self.chunkedLast }
        return self.contentLength != nil
    }
}

extension FramingFields {
    /// Reads a `Content-Length` value into `length`: a list of 1*DIGIT (whitespace around each
    /// element allowed) whose elements agree with each other and with what `length` holds.
    /// Returns `false` when it is invalid or disagrees (RFC 9112 6.3).
    static func readContentLength(_ value: String, into length: inout Int?) -> Bool {
        var valid = true
        var number = 0
        var digits = 0
        var spaceAfterDigits = false
        func closeElement() {
            if digits == 0 || digits > 18 || (length.map { $0 != number } ?? false) { valid = false }
            length = number
            (number, digits, spaceAfterDigits) = (0, 0, false)
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: ","):
                closeElement()
            case 0x20, 0x09:
                if digits > 0 { spaceAfterDigits = true }
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if spaceAfterDigits { valid = false }
                number = number &* 10 &+ Int(byte &- UInt8(ascii: "0"))
                digits += 1
            default:
                valid = false
            }
        }
        closeElement()
        return valid
    }
}

/// Reads one message body by its framing: slices of it, then its end (with the trailers of a
/// chunked body). Shared by both decoders.
private struct BodyDecoder {
    private enum State {
        case fixed(remaining: Int)
        case chunked(ChunkedDecoder)
        case untilClose
        case ended
    }

    private var state: State

    init(_ framing: HTTP1BodyFraming, limits: HTTP1HeadLimits) {
        switch framing {
        case .none, .contentLength(0): self.state = .ended
        case .contentLength(let length): self.state = .fixed(remaining: length)
        case .chunked: self.state = .chunked(ChunkedDecoder(limits: limits))
        case .untilClose: self.state = .untilClose
        }
    }

    var isUntilClose: Bool {
        if case .untilClose = self.state { return true }
        return false
    }

    /// The next slice or the end, or `nil` when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws -> ChunkedDecoder.Output? {
        switch self.state {
        case .fixed(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let length = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: length)!
            self.state = remaining == length ? .ended : .fixed(remaining: remaining - length)
            return .body(slice)
        case .chunked(var decoder):
            let output = try decoder.next(&buffer)
            self.state = .chunked(decoder)
            return output
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .ended:
            return .end(nil)
        }
    }
}

/// A request's field lines on their way to an HTTP/1.1 upstream as bytes (see
/// ``HTTP1RequestDecoder/passFieldsRaw``), the proxy's own fields appended.
struct RawRequestFields {
    var bytes: ByteBuffer
    /// They hold a `Content-Length` (never a `Transfer-Encoding`).
    var hasLength: Bool

    /// The fields of such lines as `HTTPHeaders`, for when a policy needs them after all.
    static func headers(of bytes: ByteBuffer) -> HTTPHeaders {
        HeadScanner.fields(ofRaw: bytes)
    }
}

/// Decodes HTTP/1.x requests from a connection's bytes into ``HTTPServerRequestPart``s.
///
/// After a request that asks to switch protocols (an `Upgrade` with `Connection: upgrade`, or
/// `CONNECT`) the decoder stops: the bytes that follow belong to the new protocol or wait for
/// the answer.
/// A request's start line, without the `HTTPRequestHead` (a class instance) around it.
struct HTTPRequestLine {
    var method: HTTPMethod
    var uri: String
    var version: HTTPVersion
}

struct HTTP1RequestDecoder {
    private enum State {
        case head
        case body(BodyDecoder)
        case stopped
    }

    private var state = State.head
    private var stopAfterEnd = false
    let limits: HTTP1HeadLimits
    /// What the fields of the last head returned say.
    private(set) var headFacts = RequestHeadFacts()
    /// Whether heads may keep their field lines as bytes (``rawFields``) instead of
    /// `HTTPHeaders`: set by the proxy for HTTP/1 clients. Applies to HTTP/1.1 requests
    /// without fields the proxy changes (HeadScanner.rawRequest); others get `HTTPHeaders`.
    var passFieldsRaw = false
    /// The field lines of the last head returned, when they stayed bytes (its `headers` are
    /// then empty): each `name:[OWS]value` CR LF, hop-by-hop fields left out.
    var rawFields: ByteBuffer?

    init(limits: HTTP1HeadLimits) {
        self.limits = limits
    }

    /// The decoder stopped after a protocol switch request.
    var isStopped: Bool {
        if case .stopped = self.state { return true }
        return false
    }

    /// The next request part from `buffer`, or `nil` when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws -> HTTPServerRequestPart? {
        switch self.state {
        case .head:
            var fieldStorage = ByteBuffer()
            guard let (line, headers) = try self.nextHead(&buffer, fieldStorage: &fieldStorage) else { return nil }
            return .head(HTTPRequestHead(version: line.version, method: line.method, uri: line.uri, headers: headers))
        case .body(var body):
            // A small value (no storage to copy): decode, then store it back.
            let output = try body.next(&buffer)
            self.state = .body(body)
            switch output {
            case .body(let slice): return .body(slice)
            case .end(let trailers):
                self.state = self.stopAfterEnd ? .stopped : .head
                self.stopAfterEnd = false
                return .end(trailers)
            case nil: return nil
            }
        case .stopped:
            return nil
        }
    }

    /// The next head from `buffer` as its start line and fields (the fields empty when they
    /// stayed bytes, in ``rawFields``), without the `HTTPRequestHead` that ``next(_:)`` makes
    /// of them; `nil` when more bytes are needed or a body is being read. Raw fields are
    /// written into `fieldStorage`'s storage, which a caller that keeps it and lets go of
    /// ``rawFields`` after each head reuses without an allocation.
    mutating func nextHead(
        _ buffer: inout ByteBuffer,
        fieldStorage: inout ByteBuffer
    ) throws -> (HTTPRequestLine, HTTPHeaders)? {
        guard case .head = self.state, buffer.readableBytes > 0 else { return nil }
        guard let (line, headers, length, framing) = try self.parseHead(buffer, fieldStorage: &fieldStorage) else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: length)
        self.state = .body(BodyDecoder(framing, limits: self.limits))
        return (line, headers)
    }

    private mutating func parseHead(
        _ buffer: ByteBuffer,
        fieldStorage: inout ByteBuffer
    ) throws -> (HTTPRequestLine, HTTPHeaders, Int, HTTP1BodyFraming)? {
        let limits = self.limits
        let passFieldsRaw = self.passFieldsRaw
        var rawFacts: RequestHeadFacts?
        self.rawFields = nil
        let parsed: (HTTPRequestLine, HTTPHeaders, Int)? = try buffer.withUnsafeReadableBytes { bytes in
            guard
                let head = try HeadScanner.scan(
                    bytes,
                    limits: limits,
                    firstLineLimit: limits.maxRequestLineSize,
                    firstLineError: .requestLineTooLong,
                    rawRequest: passFieldsRaw,
                    fieldStorage: &fieldStorage
                )
            else { return nil }
            if let facts = head.requestFacts {
                rawFacts = facts
                self.rawFields = head.rawFields
            }
            // method SP request-target SP HTTP-version
            let line = head.startLine
            let table = ByteClass.table
            var index = line.lowerBound
            while index < line.upperBound, bytes[index] != 0x20 {
                guard table[Int(bytes[index])] & ByteClass.token != 0 else { throw HTTP1ParseError.invalidRequestLine }
                index += 1
            }
            let methodRange = line.lowerBound..<index
            guard !methodRange.isEmpty, index < line.upperBound else { throw HTTP1ParseError.invalidRequestLine }
            index += 1
            let targetStart = index
            while index < line.upperBound, bytes[index] != 0x20 {
                guard table[Int(bytes[index])] & ByteClass.target != 0 else { throw HTTP1ParseError.invalidRequestLine }
                index += 1
            }
            let targetRange = targetStart..<index
            guard !targetRange.isEmpty, index < line.upperBound else { throw HTTP1ParseError.invalidRequestLine }
            let version = try HeadScanner.version(bytes, (index + 1)..<line.upperBound, error: .invalidRequestLine)
            let method = Self.method(UnsafeRawBufferPointer(rebasing: bytes[methodRange]))
            let uri = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetRange]), as: UTF8.self)
            return (HTTPRequestLine(method: method, uri: uri, version: version), head.headers, head.length)
        }
        guard let (line, headers, length) = parsed else { return nil }
        // One pass over the fields serves the framing here and the proxy's decisions later.
        let facts = rawFacts ?? RequestHeadFacts(headers)
        self.headFacts = facts
        let framing: HTTP1BodyFraming
        if facts.transferEncodingCount > 0 {
            // Anything but chunked last is refused by the proxy (400, then close); no body here.
            framing = facts.transferEncodingIsChunked ? .chunked : .none
        } else if facts.conflictingContentLength {
            throw HTTP1ParseError.invalidContentLength
        } else if let contentLength = facts.contentLength {
            framing = .contentLength(contentLength)
        } else {
            framing = .none
        }
        if line.method == .CONNECT || facts.isUpgrade {
            self.stopAfterEnd = true
        }
        return (line, headers, length, framing)
    }

    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        if bytes.count == 3, bytes[0] == UInt8(ascii: "G"), bytes[1] == UInt8(ascii: "E"), bytes[2] == UInt8(ascii: "T")
        {
            return .GET
        }
        return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
    }
}

/// Decodes HTTP/1.x responses from an upstream connection into ``HTTPClientResponsePart``s.
struct HTTP1ResponseDecoder {
    private enum State {
        case head
        case body(BodyDecoder)
        case stopped
    }

    private var state = State.head
    private var stopAfterEnd = false
    /// The head last returned: the next one is written into its storage.
    private var head = HTTPResponseHead(version: .http1_1, status: .ok)
    /// The request being answered was a HEAD: its response has no body whatever it says.
    var answeringHEAD = false
    /// For the head last returned: its hop-by-hop fields were left out (all but a 101's), and
    /// this is what its `Connection` fields said; `nil` when they are still in the head.
    private(set) var removedHopByHop: ConnectionOptions?
    /// Set per request: a final response whose fields need no change on the way (a length or
    /// `chunked` alone, a status with a body, HTTP/1.1) keeps them as bytes, in ``rawFields``,
    /// and its head comes without fields. For an HTTP/1.1 client, which gets them as they are.
    var passFieldsRaw = false
    /// For the head last returned, with ``passFieldsRaw``: its fields, if kept as bytes.
    private(set) var rawFields: RawResponseFields?
    let limits: HTTP1HeadLimits

    init(limits: HTTP1HeadLimits) {
        self.limits = limits
    }

    /// Between messages (a head is expected next).
    var isAtMessageBoundary: Bool {
        if case .head = self.state { return true }
        return false
    }

    /// The decoder stopped after a 101 (the bytes that follow belong to the new protocol).
    var isStopped: Bool {
        if case .stopped = self.state { return true }
        return false
    }

    /// The next response part from `buffer`, or `nil` when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws -> HTTPClientResponsePart? {
        var fieldStorage = ByteBuffer()
        return try self.next(&buffer, fieldStorage: &fieldStorage)
    }

    /// ``next(_:)``, with raw fields written into `fieldStorage`'s storage: a caller that keeps
    /// it and calls ``dropRawFields()`` once it wrote them reuses it without an allocation.
    mutating func next(_ buffer: inout ByteBuffer, fieldStorage: inout ByteBuffer) throws -> HTTPClientResponsePart? {
        switch self.state {
        case .head:
            guard buffer.readableBytes > 0 else { return nil }
            self.rawFields = nil
            let raw = self.passFieldsRaw && Self.statusMayPassAsIs(buffer)
            guard var parsed = try Self.parseHead(buffer, limits: self.limits, raw: raw, fieldStorage: &fieldStorage)
            else { return nil }
            let code = parsed.status.code
            if raw && !(parsed.scanned.rawFields != nil && parsed.scanned.framing.isPlain) {
                // The status line qualified, the fields do not (framing the encoder changes,
                // fields named by `Connection`): as strings.
                parsed = try Self.parseHead(buffer, limits: self.limits, raw: false, fieldStorage: &fieldStorage)!
            }
            let scanned = parsed.scanned
            self.rawFields = scanned.rawFields.map {
                RawResponseFields(bytes: $0, chunked: scanned.framing.transferEncoding)
            }
            var headers = scanned.headers
            var fields = scanned.framing
            if fields.transferEncoding && (fields.contentLength != nil || fields.invalidContentLength) {
                // Both: the coding frames the body and a proxy removes the length (RFC 9112
                // 6.3), which would otherwise go out with the decoded body. (Such a head is
                // never passed as bytes: it is not `isPlain`.)
                headers.remove(name: "content-length")
                fields.contentLength = nil
                fields.invalidContentLength = false
            }
            if code == 101 {
                // A protocol switch keeps `Upgrade` and `Connection` for the proxy: read again, all.
                headers = try Self.parseHead(
                    buffer,
                    limits: self.limits,
                    dropHopByHop: false,
                    raw: false,
                    fieldStorage: &fieldStorage
                )!.scanned.headers
                fields = FramingFields(headers)
                self.removedHopByHop = nil
            } else {
                self.removedHopByHop = scanned.connection
            }
            buffer.moveReaderIndex(forwardBy: parsed.length)
            // The last head's storage again (no allocation) when its receiver let go of it.
            self.head.version = parsed.version
            self.head.status = parsed.status
            self.head.headers = headers
            if code >= 100 && code < 200 && code != 101 {
                return .head(self.head)  // informational: the final response follows
            }
            if code == 101 { self.stopAfterEnd = true }
            let framing: HTTP1BodyFraming
            if self.answeringHEAD || code == 101 || code == 204 || code == 304 {
                framing = .none
            } else if fields.transferEncoding {
                // Only `chunked` alone is decoded (as nginx does); `gzip, chunked` or `gzip`
                // would reach the client relabelled, its coded bytes taken for the content.
                guard fields.codings == 1 && fields.chunkedLast else {
                    throw HTTP1ParseError.unsupportedTransferCoding
                }
                framing = .chunked
            } else if fields.invalidContentLength {
                throw HTTP1ParseError.invalidContentLength
            } else {
                framing = fields.contentLength.map { .contentLength($0) } ?? .untilClose
            }
            self.state = .body(BodyDecoder(framing, limits: self.limits))
            return .head(self.head)
        case .body(var body):
            let output = try body.next(&buffer)
            self.state = .body(body)
            switch output {
            case .body(let slice): return .body(slice)
            case .end(let trailers):
                self.state = self.stopAfterEnd ? .stopped : .head
                self.stopAfterEnd = false
                self.answeringHEAD = false
                return .end(trailers)
            case nil: return nil
            }
        case .stopped:
            return nil
        }
    }

    /// Forgets the last head's raw fields (their storage is the caller's field storage again).
    mutating func dropRawFields() {
        self.rawFields = nil
    }

    /// The connection closed: the end of a body delimited by the close, if one was being read.
    mutating func connectionClosed() -> HTTPClientResponsePart? {
        guard case .body(let body) = self.state, body.isUntilClose else { return nil }
        self.state = .stopped
        return .end(nil)
    }

    /// Whether the status line at the start of `buffer` is `HTTP/1.1` with a status that has a
    /// body and is final (so its fields are worth copying as bytes; 204, 304, 1xx and HTTP/1.0
    /// would only be scanned twice).
    private static func statusMayPassAsIs(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            guard bytes.count >= 12 else { return false }
            var code = 0
            guard HeadScanner.startsWithHTTP11(bytes) else { return false }
            for offset in 9..<12 {
                guard let digit = HeadScanner.digit(bytes[offset]) else { return false }
                code = code * 10 + digit
            }
            return code >= 200 && code != 204 && code != 304
        }
    }

    private static func parseHead(
        _ buffer: ByteBuffer,
        limits: HTTP1HeadLimits,
        dropHopByHop: Bool = true,
        raw: Bool,
        fieldStorage: inout ByteBuffer
    ) throws -> (version: HTTPVersion, status: HTTPResponseStatus, length: Int, scanned: HeadScanner.Head)? {
        try buffer.withUnsafeReadableBytes { bytes in
            guard
                let head = try HeadScanner.scan(
                    bytes,
                    limits: limits,
                    firstLineLimit: limits.maxFieldSize,
                    firstLineError: .headerSectionTooLarge,
                    dropHopByHop: dropHopByHop,
                    raw: raw,
                    fieldStorage: &fieldStorage
                )
            else { return nil }
            // HTTP-version SP 3DIGIT SP [ reason-phrase ]  (a missing SP before an empty reason is tolerated)
            let line = head.startLine
            guard line.count >= 12, bytes[line.lowerBound + 8] == 0x20 else { throw HTTP1ParseError.invalidStatusLine }
            let version = try HeadScanner.version(
                bytes,
                line.lowerBound..<(line.lowerBound + 8),
                error: .invalidStatusLine
            )
            var code = 0
            for offset in 9..<12 {
                guard let digit = HeadScanner.digit(bytes[line.lowerBound + offset]) else {
                    throw HTTP1ParseError.invalidStatusLine
                }
                code = code * 10 + digit
            }
            guard code >= 100, line.count == 12 || bytes[line.lowerBound + 12] == 0x20 else {
                throw HTTP1ParseError.invalidStatusLine
            }
            return (version, HTTPResponseStatus(statusCode: code), head.length, head)
        }
    }
}

/// Serialises heads and frames bodies, with the framing rules NIOHTTP1's encoders apply (so
/// behaviour did not change when they were replaced): a body-less status or method loses its
/// framing fields; an HTTP/1.1 message that may have a body but has no Content-Length is sent
/// chunked.
struct HTTP1Encoder {
    enum Framing {
        case raw
        case chunked
        /// No body is written (a response to HEAD, a 204 or 304, a 1xx).
        case suppressed
    }

    private(set) var framing = Framing.raw
    /// A chunk's data was written and its CR LF is still due.
    private var chunkOpen = false

    /// Writes a request head and remembers how its body is framed.
    mutating func writeRequestHead(_ head: HTTPRequestHead, into buffer: inout ByteBuffer) {
        var headers = head.headers
        let mayHaveBody: Bool?
        switch head.method {
        case .TRACE: mayHaveBody = false
        case .POST, .PUT, .PATCH: mayHaveBody = true
        default: mayHaveBody = nil
        }
        let chunked = Self.frame(&headers, mayHaveBody: mayHaveBody, version: head.version)
        self.framing = chunked ? .chunked : .raw
        self.chunkOpen = false
        Self.writeRequestLine(head, into: &buffer)
        Self.write(headers, into: &buffer)
    }

    /// `METHOD SP target SP HTTP/1.x CR LF` (a minor version 0 is sent as 1.0, others as 1.1).
    static func writeRequestLine(_ head: HTTPRequestHead, into buffer: inout ByteBuffer) {
        buffer.writeString(head.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        buffer.writeStaticString(head.version.minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n")
    }

    /// Writes an HTTP/1.1 request head whose client fields go as bytes (see
    /// ``HTTP1RequestDecoder/passFieldsRaw``; the proxy's own fields are already appended to
    /// them). They hold no `Transfer-Encoding`; `hasLength`: they hold a `Content-Length`.
    /// Framed as ``writeRequestHead(_:into:)`` frames: a POST, PUT or PATCH without a length
    /// goes chunked.
    mutating func writeRequestHead(
        _ head: HTTPRequestHead,
        rawFields: ByteBuffer,
        hasLength: Bool,
        into buffer: inout ByteBuffer
    ) {
        let chunked: Bool
        switch head.method {
        case .POST, .PUT, .PATCH: chunked = !hasLength
        default: chunked = false
        }
        self.framing = chunked ? .chunked : .raw
        self.chunkOpen = false
        Self.writeRequestLine(head, into: &buffer)  // (such heads are HTTP/1.1)
        buffer.writeImmutableBuffer(rawFields)
        if chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        buffer.writeStaticString("\r\n")
    }

    /// Writes a response head; `answeringHEAD` suppresses the body that follows.
    mutating func writeResponseHead(_ head: HTTPResponseHead, answeringHEAD: Bool, into buffer: inout ByteBuffer) {
        var headers = head.headers
        let mayHaveBody = head.status.mayHaveResponseBody
        let chunked = Self.frame(&headers, mayHaveBody: mayHaveBody, version: head.version)
        self.chunkOpen = false
        if !mayHaveBody || answeringHEAD {
            self.framing = .suppressed
        } else {
            self.framing = chunked ? .chunked : .raw
        }
        Self.writeStatusLine(head, into: &buffer)
        Self.write(headers, into: &buffer)
    }

    /// Writes a response head whose upstream fields are passed on as bytes (see
    /// ``HTTP1ResponseDecoder/passFieldsRaw``), followed by the fields of `head` (the proxy's own).
    mutating func writeResponseHead(
        _ head: HTTPResponseHead,
        answeringHEAD: Bool,
        raw: RawResponseFields,
        into buffer: inout ByteBuffer
    ) {
        self.chunkOpen = false
        self.framing = answeringHEAD ? .suppressed : raw.chunked ? .chunked : .raw
        // The status line, the upstream's lines and the coding in one write (one uniqueness
        // and exclusivity check, not one per piece).
        let reason = head.status.reasonPhrase
        let size = 15 + reason.utf8.count + raw.bytes.readableBytes + (raw.chunked ? 28 : 0)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var writer = BytesWriter(out)
            Self.writeStatusLine(head, reason: reason, to: &writer)
            writer.write(raw.bytes)
            if raw.chunked { writer.write("transfer-encoding: chunked\r\n") }
            return writer.count
        }
        Self.write(head.headers, into: &buffer)
    }

    private static func writeStatusLine(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        let reason = head.status.reasonPhrase
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 15 + reason.utf8.count) { out in
            var writer = BytesWriter(out)
            Self.writeStatusLine(head, reason: reason, to: &writer)
            return writer.count
        }
    }

    /// `HTTP/1.x NNN reason CR LF`: 15 bytes and the reason.
    private static func writeStatusLine(_ head: HTTPResponseHead, reason: String, to writer: inout BytesWriter) {
        writer.write(head.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        let code = Int(head.status.code)
        writer.write(
            byte: UInt8(truncatingIfNeeded: 0x30 + code / 100 % 10),
            UInt8(truncatingIfNeeded: 0x30 + code / 10 % 10),
            UInt8(truncatingIfNeeded: 0x30 + code % 10),
            UInt8(ascii: " ")
        )
        writer.write(reason)
        writer.write("\r\n")
    }

    /// The bytes to write before one body part when the body is chunked (`nil`: write the part
    /// as it is). The CR LF that ends a chunk's data goes out with the next chunk's size line
    /// (or the last chunk), so framing costs one small buffer per part and the part is never copied.
    mutating func chunkPrefix(for length: Int, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard case .chunked = self.framing, length > 0 else { return nil }
        var prefix = allocator.buffer(capacity: 20)
        if self.chunkOpen { prefix.writeStaticString("\r\n") }
        prefix.writeString(String(length, radix: 16))
        prefix.writeStaticString("\r\n")
        self.chunkOpen = true
        return prefix
    }

    /// Whether a body part is written at all (not for a suppressed body).
    var writesBody: Bool {
        if case .suppressed = self.framing { return false }
        return true
    }

    /// The end of the message: the last chunk and trailers when chunked, else nothing.
    mutating func end(trailers: HTTPHeaders?, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard case .chunked = self.framing else { return nil }
        var buffer = allocator.buffer(capacity: 8)
        if self.chunkOpen { buffer.writeStaticString("\r\n") }
        self.chunkOpen = false
        buffer.writeStaticString("0\r\n")
        if let trailers {
            Self.write(trailers, into: &buffer)
        } else {
            buffer.writeStaticString("\r\n")
        }
        return buffer
    }

    /// NIO's `correctlyFrameTransportHeaders`, restated: `mayHaveBody` true (yes), false (no),
    /// `nil` (unlikely). Returns whether the body is chunked.
    private static func frame(_ headers: inout HTTPHeaders, mayHaveBody: Bool?, version: HTTPVersion) -> Bool {
        let http11 = version.major == 1 && version.minor >= 1
        // One look at the names (`remove` copies the storage even when nothing matches).
        var hasLength = false
        var coding: String?
        for (name, value) in headers {
            switch name.utf8.count {
            case 14 where name.equalsLowercaseToken("content-length"): hasLength = true
            case 17 where name.equalsLowercaseToken("transfer-encoding"): coding = coding ?? value
            default: continue
            }
        }
        let hasCoding = coding != nil
        switch mayHaveBody {
        case false?:
            if hasLength { headers.remove(name: "content-length") }
            if hasCoding { headers.remove(name: "transfer-encoding") }
            return false
        case true?:
            if hasLength {
                if hasCoding { headers.remove(name: "transfer-encoding") }
                return false
            }
            guard http11 else { return false }
            headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
            return true
        case nil:
            if hasLength {
                if hasCoding { headers.remove(name: "transfer-encoding") }
                return false
            }
            return http11 && coding == "chunked"
        }
    }

    /// `name: value` lines and the empty line that ends the section, copied in one pass into
    /// space reserved once.
    static func write(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        var size = 2
        for (name, value) in headers { size += name.utf8.count + value.utf8.count + 4 }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var at = 0
            for (name, value) in headers {
                at = Self.copy(name, to: out, at: at)
                out[at] = UInt8(ascii: ":")
                out[at + 1] = UInt8(ascii: " ")
                at = Self.copy(value, to: out, at: at + 2)
                out[at] = 0x0D
                out[at + 1] = 0x0A
                at += 2
            }
            out[at] = 0x0D
            out[at + 1] = 0x0A
            return at + 2
        }
    }

    @inline(__always)
    private static func copy(_ text: String, to out: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        var text = text
        return text.withUTF8 { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return at }
            (out.baseAddress! + at).copyMemory(from: base, byteCount: bytes.count)
            return at + bytes.count
        }
    }
}

/// Portico's HTTP/1.1 request decoder behind a small public face, for the package-benchmark
/// suite (`Benchmarks/`), which sees public API only.
public struct HTTP1RequestParser {
    private var decoder: HTTP1RequestDecoder

    public init(maxRequestLineSize: Int = 8192, maxFieldSize: Int = 8192, maxHeadSize: Int = 65536) {
        self.decoder = HTTP1RequestDecoder(
            limits: HTTP1HeadLimits(
                maxRequestLineSize: maxRequestLineSize,
                maxFieldSize: maxFieldSize,
                maxHeadSize: maxHeadSize
            )
        )
    }

    /// Decodes what `buffer` holds; returns the request heads found (each with its fields).
    /// Throws on malformed input, as the proxy would answer 400/414/431.
    public mutating func decodeHeads(_ buffer: inout ByteBuffer) throws -> [HTTPRequestHead] {
        var heads: [HTTPRequestHead] = []
        while let part = try self.decoder.next(&buffer) {
            if case .head(let head) = part { heads.append(head) }
        }
        return heads
    }
}

/// Appends bytes to memory reserved beforehand (the caller sized it).
struct BytesWriter {
    private let out: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    mutating func write(_ text: StaticString) {
        self.copy(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func write(_ text: String) {
        var text = text
        text.withUTF8 { self.copy(UnsafeRawBufferPointer($0)) }
    }

    mutating func write(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { self.copy($0) }
    }

    mutating func write(byte first: UInt8, _ second: UInt8, _ third: UInt8, _ fourth: UInt8) {
        precondition(self.count + 4 <= self.out.count, "BytesWriter: more than reserved")
        self.out[self.count] = first
        self.out[self.count + 1] = second
        self.out[self.count + 2] = third
        self.out[self.count + 3] = fourth
        self.count += 4
    }

    @inline(__always)
    private mutating func copy(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(self.count + bytes.count <= self.out.count, "BytesWriter: more than reserved")
        (self.out.baseAddress! + self.count).copyMemory(from: base, byteCount: bytes.count)
        self.count += bytes.count
    }
}
