import NIOHPACK
import NIOHTTP1

/// A client's HEADERS block, checked against RFC 9113 (8.1.1 malformed messages, 8.2 fields,
/// 8.3 pseudo-header fields) and turned into the head the proxy works with, in one pass.
///
/// NIOHTTP2's own header-block and content-length validation is switched off
/// (HTTPEngine.configureHTTP2): it checked every block in both directions with a `Substring`
/// per field, about 8% of the CPU of a proxied HTTP/2 request. What it checked on requests is
/// checked here, and more (a `:path` that is not origin-form, control characters, a list in
/// `content-length`); the DATA of a stream is held to its `content-length` by
/// ``HTTP2ServerConnection``. Responses need no such check: their heads come from Portico's
/// HTTP/1 decoder (tokens for names, no CR/LF/NUL in values) or from Portico itself, and
/// ``HTTP2ServerConnection/responseBlock(_:)`` lowercases names and drops
/// connection-specific fields.
enum HTTP2RequestBlock: Equatable {
    /// `contentLength`: the request's declared body length, when it has one.
    case request(HTTPRequestHead, contentLength: Int?)
    /// A CONNECT (no `:scheme`, no `:path`): well-formed, not proxied.
    case connect
    /// Malformed: the stream is reset with PROTOCOL_ERROR; the reason is for the debug log.
    case malformed(String)

    private struct Pseudo: OptionSet, CustomStringConvertible {
        let rawValue: UInt8
        static let method = Pseudo(rawValue: 1)
        static let scheme = Pseudo(rawValue: 2)
        static let authority = Pseudo(rawValue: 4)
        static let path = Pseudo(rawValue: 8)

        var description: String {
            let names = [(Self.method, ":method"), (.scheme, ":scheme"), (.authority, ":authority"), (.path, ":path")]
            return names.filter { self.contains($0.0) }.map(\.1).joined(separator: ", ")
        }
    }

    /// `:authority` becomes `Host` (it wins over a `host` field), `cookie` fields are joined
    /// with "; " as HTTP/1.1 needs (RFC 9113 8.2.3), and several equal `content-length` fields
    /// become one.
    init(_ block: HPACKHeaders) {
        var seen: Pseudo = []
        var method = ""
        var path = ""
        var authority: String?
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count + 1)
        fields.append(("host", ""))
        var cookie: String?
        var contentLength: Int?
        var regularFieldSeen = false
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                guard !regularFieldSeen else {
                    self = .malformed("pseudo-header field \(name) after a regular field")
                    return
                }
                let field: Pseudo
                switch name {
                case ":method": field = .method
                case ":scheme": field = .scheme
                case ":authority": field = .authority
                case ":path": field = .path
                default:
                    // :status belongs to responses; :protocol (RFC 8441) is not supported.
                    self = .malformed("pseudo-header field \(name) in a request")
                    return
                }
                guard !seen.contains(field) else {
                    self = .malformed("\(name) twice")
                    return
                }
                seen.insert(field)
                // Their values end up in an HTTP/1.1 request line or Host field: no spaces, no
                // controls.
                let bytesClass = field == .method ? ByteClass.token : ByteClass.target
                guard Self.all(value, are: bytesClass), !value.isEmpty || field == .authority else {
                    self = .malformed("invalid \(name) \"\(value)\"")
                    return
                }
                switch field {
                case .method: method = value
                case .path: path = value
                case .authority: authority = value
                default: break  // :scheme is the connection's
                }
                continue
            }
            regularFieldSeen = true
            if let problem = Self.fieldProblem(name: name, value: value) {
                self = .malformed(problem)
                return
            }
            switch name {
            case "host":
                if fields[0].1.isEmpty { fields[0].1 = value }
            case "cookie":
                cookie = cookie.map { $0 + "; " + value } ?? value
            case "content-length":
                guard let length = Self.contentLength(value), contentLength == nil || contentLength == length else {
                    self = .malformed("invalid content-length \"\(value)\"")
                    return
                }
                if contentLength == nil { fields.append((name, value)) }
                contentLength = length
            default:
                fields.append((name, value))
            }
        }
        if method == "CONNECT" {
            // Only :method and :authority (RFC 9113 8.5; :protocol is not supported).
            self = seen == [.method, .authority] ? .connect : .malformed("CONNECT with \(seen)")
            return
        }
        guard seen.isSuperset(of: [.method, .scheme, .path]) else {
            self = .malformed("a request without :method, :scheme or :path")
            return
        }
        // Origin form, or "*" for a server-wide OPTIONS (RFC 9113 8.3.1, RFC 9112 3.2).
        guard path.utf8.first == UInt8(ascii: "/") || (path == "*" && method == "OPTIONS") else {
            self = .malformed("invalid :path \"\(path)\"")
            return
        }
        if let authority { fields[0].1 = authority }
        if fields[0].1.isEmpty { fields.removeFirst() }
        if let cookie { fields.append(("cookie", cookie)) }
        let head = HTTPRequestHead(
            version: .http2,
            method: HTTPMethod(rawValue: method),
            uri: path,
            headers: HTTPHeaders(fields)
        )
        self = .request(head, contentLength: contentLength)
    }

    /// Why a trailers block is malformed, or `nil`: no pseudo-header fields, and the rules
    /// of request fields.
    static func trailersProblem(_ block: HPACKHeaders) -> String? {
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") { return "pseudo-header field \(name) in trailers" }
            if let problem = Self.fieldProblem(name: name, value: value) { return problem }
        }
        return nil
    }

    /// Why a regular field of a request is malformed, or `nil` (RFC 9113 8.2.1, 8.2.2).
    private static func fieldProblem(name: String, value: String) -> String? {
        guard !name.isEmpty, Self.all(name, are: ByteClass.lowercaseToken) else {
            return "field name \"\(name)\" is not a lowercase token"
        }
        if Self.isConnectionSpecific(name) { return "connection-specific field \(name)" }
        if name == "te" && value != "trailers" { return "te other than \"trailers\"" }
        // RFC 9113 forbids NUL, CR and LF; the other controls (but HTAB) are refused too, as
        // Portico's HTTP/1.1 decoder refuses them: the value goes on to an HTTP/1.1 upstream.
        guard Self.all(value, are: ByteClass.fieldValue) else {
            return "field \(name) has a control character in its value"
        }
        return nil
    }

    /// The connection-specific fields HTTP/2 forbids in both directions (RFC 9113 8.2.2);
    /// `name` in lowercase.
    static func isConnectionSpecific(_ name: String) -> Bool {
        switch name {
        case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade": true
        default: false
        }
    }

    /// `1*DIGIT` as a length, `nil` when malformed or beyond 18 digits.
    private static func contentLength(_ value: String) -> Int? {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= 18 else { return nil }
        var length = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            length = length * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return length
    }

    /// Whether every byte of `text` is of `byteClass` (a ``ByteClass`` bit).
    private static func all(_ text: String, are byteClass: UInt8) -> Bool {
        let table = ByteClass.table
        let contiguous = text.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.allSatisfy { table[Int($0)] & byteClass != 0 }
        }
        return contiguous ?? text.utf8.allSatisfy { table[Int($0)] & byteClass != 0 }
    }
}
