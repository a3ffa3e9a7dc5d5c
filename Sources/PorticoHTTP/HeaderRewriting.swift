import NIOCore
import NIOHTTP1

extension StringProtocol {
    /// ASCII case-insensitive comparison against a lowercase token made of letters, digits and `-`.
    @inline(__always)
    func equalsLowercaseToken(_ token: StaticString) -> Bool {
        let count = token.utf8CodeUnitCount
        guard self.utf8.count == count else { return false }
        return token.withUTF8Buffer { expected in
            var index = 0
            for byte in self.utf8 {
                if byte | 0x20 != expected[index] { return false }
                index += 1
            }
            return true
        }
    }
}

/// What the proxy needs to know about a request head, gathered in one pass over its headers.
struct RequestHeadFacts {
    /// The first `Host` field's value, and how many there are.
    var host: String?
    var hostCount = 0
    var transferEncodingCount = 0
    var transferEncodingIsChunked = false
    var contentLength: Int?
    var conflictingContentLength = false
    var expectsContinue = false
    var isUpgrade = false
    /// The fixed hop-by-hop headers present (removed before forwarding).
    var hopByHop = HopByHopHeaders()
    /// What the `Connection` fields say.
    var connection = ConnectionOptions()
    var hasForwardedFor = false
    var hasForwardedProto = false
    var hasForwardedHost = false
    var hasForwardedPort = false
    var hasRealIP = false

    /// Whether the connection stays open after this message (RFC 9112 9.3), from its
    /// `Connection` tokens: HTTP/1.1 unless `close`, HTTP/1.0 only with `keep-alive`.
    func isKeepAlive(_ version: HTTPVersion) -> Bool {
        self.connection.isKeepAlive(version)
    }

    /// Whether a body follows the head.
    var hasBody: Bool {
        self.transferEncodingCount > 0 || (self.contentLength ?? 0) > 0
    }

    init() {}

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch name.utf8.count {
            case 4 where name.equalsLowercaseToken("host"):
                if self.host == nil { self.host = value }
                self.hostCount += 1
            case 2 where name.equalsLowercaseToken("te"):
                self.hopByHop.insert(.te)
            case 6 where name.equalsLowercaseToken("expect"):
                if value.lowercased() == "100-continue" { self.expectsContinue = true }
            case 7 where name.equalsLowercaseToken("upgrade"):
                self.isUpgrade = true
                self.hopByHop.insert(.upgrade)
            case 7 where name.equalsLowercaseToken("trailer"):
                self.hopByHop.insert(.trailer)
            case 9 where name.equalsLowercaseToken("x-real-ip"):
                self.hasRealIP = true
            case 10 where name.equalsLowercaseToken("connection"):
                self.hopByHop.insert(.connection)
                self.connection.read(value)
            case 10 where name.equalsLowercaseToken("keep-alive"):
                self.hopByHop.insert(.keepAlive)
            case 14 where name.equalsLowercaseToken("content-length"):
                if !FramingFields.readContentLength(value, into: &self.contentLength) {
                    self.conflictingContentLength = true
                }
            case 15 where name.equalsLowercaseToken("x-forwarded-for"):
                self.hasForwardedFor = true
            case 16 where name.equalsLowercaseToken("x-forwarded-host"):
                self.hasForwardedHost = true
            case 16 where name.equalsLowercaseToken("x-forwarded-port"):
                self.hasForwardedPort = true
            case 16 where name.equalsLowercaseToken("proxy-connection"):
                self.hopByHop.insert(.proxyConnection)
            case 17 where name.equalsLowercaseToken("x-forwarded-proto"):
                self.hasForwardedProto = true
            case 17 where name.equalsLowercaseToken("transfer-encoding"):
                // A field without any coding counts as one that is not chunked (refused).
                var codings = 0
                value.forEachListElement { token in
                    codings += 1
                    self.transferEncodingIsChunked = token.equalsLowercaseToken("chunked")
                }
                if codings == 0 { self.transferEncodingIsChunked = false }
                self.transferEncodingCount += max(codings, 1)
            default:
                continue
            }
        }
        self.isUpgrade = self.isUpgrade && self.connection.upgrade
    }
}

extension String {
    /// Calls `body` with each non-empty element of this comma-separated list (RFC 9110 5.6.1),
    /// spaces trimmed.
    func forEachListElement(_ body: (Substring) -> Void) {
        var rest = self[...]
        while !rest.isEmpty {
            let comma = rest.utf8.firstIndex(of: UInt8(ascii: ",")) ?? rest.endIndex
            let element = rest[..<comma].trimmingSpaces()
            if !element.isEmpty { body(element) }
            rest = comma == rest.endIndex ? rest[rest.endIndex...] : rest[rest.utf8.index(after: comma)...]
        }
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (read as bytes, no Characters formed).
    func trimmingSpaces() -> Substring {
        let bytes = self.utf8
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start = bytes.index(after: start) }
        while end > start {
            let last = bytes.index(before: end)
            guard bytes[last] == 0x20 || bytes[last] == 0x09 else { break }
            end = last
        }
        return self[start..<end]
    }
}

/// The fixed hop-by-hop headers (RFC 9110 7.6.1 plus the legacy `Proxy-Connection`).
struct HopByHopHeaders: OptionSet {
    let rawValue: UInt8

    static let connection = HopByHopHeaders(rawValue: 1 << 0)
    static let keepAlive = HopByHopHeaders(rawValue: 1 << 1)
    static let proxyConnection = HopByHopHeaders(rawValue: 1 << 2)
    static let te = HopByHopHeaders(rawValue: 1 << 3)
    static let trailer = HopByHopHeaders(rawValue: 1 << 4)
    static let upgrade = HopByHopHeaders(rawValue: 1 << 5)

    static let all: [(HopByHopHeaders, String)] = [
        (.connection, "connection"), (.keepAlive, "keep-alive"), (.proxyConnection, "proxy-connection"),
        (.te, "te"), (.trailer, "trailer"), (.upgrade, "upgrade"),
    ]
}

/// The tokens of `Connection` fields, classified as they are read, without allocating.
struct ConnectionOptions {
    var close = false
    var keepAlive = false
    var upgrade = false
    /// Some token names another header, to be removed too (RFC 9110 7.6.1).
    var namesHeaders = false

    /// Whether the connection stays open after a message of `version` (RFC 9112 9.3): HTTP/1.1
    /// unless `close`, HTTP/1.0 only with `keep-alive`; other versions manage their own.
    func isKeepAlive(_ version: HTTPVersion) -> Bool {
        guard version.major == 1 else { return true }
        return version.minor == 0 ? self.keepAlive : !self.close
    }

    /// Reads one `Connection` field value (a comma-separated list).
    mutating func read(_ value: String) {
        value.forEachListElement { token in
            if token.equalsLowercaseToken("close") {
                self.close = true
            } else if token.equalsLowercaseToken("keep-alive") {
                self.keepAlive = true
            } else if token.equalsLowercaseToken("upgrade") {
                self.upgrade = true
            } else if Self.namesHeader(token) {
                self.namesHeaders = true
            }
        }
    }

    /// Whether a token names a header that only ``HopByHopHeaders`` does not remove anyway
    /// (`close`, `keep-alive`, `upgrade` and the fixed hop-by-hop names are handled there).
    static func namesHeader(_ token: Substring) -> Bool {
        !(token.equalsLowercaseToken("close") || token.equalsLowercaseToken("keep-alive")
            || token.equalsLowercaseToken("upgrade") || token.equalsLowercaseToken("connection")
            || token.equalsLowercaseToken("te") || token.equalsLowercaseToken("trailer")
            || token.equalsLowercaseToken("proxy-connection"))
    }
}

extension HTTPHeaders {
    /// Removes the hop-by-hop headers that are `present` and, when `connection` says some
    /// token names another header, those too; for an upgrade, keeps `Upgrade` and sends
    /// `Connection: upgrade`.
    mutating func removeHopByHop(present: HopByHopHeaders, connection: ConnectionOptions, keepUpgrade: Bool) {
        if connection.namesHeaders {
            // Rare: read the names before the Connection fields go.
            var named: [String] = []
            for value in self["connection"] {
                value.forEachListElement { token in
                    if ConnectionOptions.namesHeader(token) { named.append(token.lowercased()) }
                }
            }
            for name in named { self.remove(name: name) }
        }
        for (header, name) in HopByHopHeaders.all where present.contains(header) {
            if keepUpgrade && header == .upgrade { continue }
            self.remove(name: name)
        }
        if keepUpgrade {
            self.add(name: "connection", value: "upgrade")
        }
    }

    /// Removes hop-by-hop headers from an upstream response (one scan; removals only for what
    /// is there). Returns whether the upstream keeps the connection open (`version` is the
    /// response's).
    mutating func removeHopByHopFromResponse(keepUpgrade: Bool, version: HTTPVersion) -> Bool {
        var connection = ConnectionOptions()
        var present = HopByHopHeaders()
        for (name, value) in self {
            switch name.utf8.count {
            case 10 where name.equalsLowercaseToken("connection"):
                present.insert(.connection)
                connection.read(value)
            case 10 where name.equalsLowercaseToken("keep-alive"):
                present.insert(.keepAlive)
            case 2 where name.equalsLowercaseToken("te"):
                present.insert(.te)
            case 7 where name.equalsLowercaseToken("trailer"):
                present.insert(.trailer)
            case 7 where name.equalsLowercaseToken("upgrade"):
                present.insert(.upgrade)
            case 16 where name.equalsLowercaseToken("proxy-connection"):
                present.insert(.proxyConnection)
            default:
                continue
            }
        }
        if !present.isEmpty {
            self.removeHopByHop(present: present, connection: connection, keepUpgrade: keepUpgrade)
        }
        return connection.isKeepAlive(version)
    }
}

/// The per-connection facts used to write `X-Forwarded-*` headers.
struct ForwardingContext {
    var clientAddress: String
    var trusted: Bool
    var scheme: String
    var localPort: String

    func apply(to headers: inout HTTPHeaders, facts: RequestHeadFacts) {
        if !(facts.hasForwardedFor || facts.hasForwardedProto || facts.hasForwardedHost || facts.hasForwardedPort
            || facts.hasRealIP)
        {
            // The usual case: none of them came with the request. Appended as one block (one
            // copy of the fields; `add` would check each constant name for non-ASCII bytes).
            var fields: [(String, String)] = []
            fields.reserveCapacity(5)
            fields.append(("x-forwarded-for", self.clientAddress))
            fields.append(("x-forwarded-proto", self.scheme))
            if let host = facts.host { fields.append(("x-forwarded-host", host)) }
            fields.append(("x-forwarded-port", self.localPort))
            fields.append(("x-real-ip", self.clientAddress))
            headers.reserveCapacity(headers.count + fields.count)
            headers.add(contentsOf: HTTPHeaders(fields))
            return
        }
        headers.reserveCapacity(headers.count + 5)  // one copy of the fields, not one per add
        if facts.hasForwardedFor {
            if self.trusted {
                let existing = headers["x-forwarded-for"].joined(separator: ", ")
                headers.replaceOrAdd(name: "x-forwarded-for", value: existing + ", " + self.clientAddress)
            } else {
                headers.replaceOrAdd(name: "x-forwarded-for", value: self.clientAddress)
            }
        } else {
            headers.add(name: "x-forwarded-for", value: self.clientAddress)
        }
        Self.set(&headers, "x-forwarded-proto", self.scheme, present: facts.hasForwardedProto, keep: self.trusted)
        if let host = facts.host {
            Self.set(&headers, "x-forwarded-host", host, present: facts.hasForwardedHost, keep: self.trusted)
        } else if facts.hasForwardedHost && !self.trusted {
            // (An HTTP/1.0 request without Host: nothing of ours to put in its place.)
            headers.remove(name: "x-forwarded-host")
        }
        Self.set(&headers, "x-forwarded-port", self.localPort, present: facts.hasForwardedPort, keep: self.trusted)
        Self.set(&headers, "x-real-ip", self.clientAddress, present: facts.hasRealIP, keep: self.trusted)
    }

    /// The same fields as lines, for a request whose fields go as bytes (it has none of
    /// them: such requests take the string path). The fast lane writes the same lines with
    /// the constant parts made once per listener (``linesAfterAddress()``, ``linesAfterHost()``).
    func append(to buffer: inout ByteBuffer, host: String?) {
        buffer.writeStaticString("x-forwarded-for: ")
        buffer.writeString(self.clientAddress)
        self.appendAfterAddress(to: &buffer)
        if let host { Self.appendHost(host, to: &buffer) }
        self.appendAfterHost(to: &buffer)
        buffer.writeString(self.clientAddress)
        buffer.writeStaticString("\r\n")
    }

    /// From the end of the `x-forwarded-for` value to `x-forwarded-host`.
    private func appendAfterAddress(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("\r\nx-forwarded-proto: ")
        buffer.writeString(self.scheme)
        buffer.writeStaticString("\r\n")
    }

    static func appendHost(_ host: String, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("x-forwarded-host: ")
        buffer.writeString(host)
        buffer.writeStaticString("\r\n")
    }

    /// From `x-forwarded-port` to the value of `x-real-ip` (the client's address, then CR LF).
    private func appendAfterHost(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("x-forwarded-port: ")
        buffer.writeString(self.localPort)
        buffer.writeStaticString("\r\nx-real-ip: ")
    }

    func linesAfterAddress() -> ByteBuffer {
        var buffer = ByteBuffer()
        self.appendAfterAddress(to: &buffer)
        return buffer
    }

    func linesAfterHost() -> ByteBuffer {
        var buffer = ByteBuffer()
        self.appendAfterHost(to: &buffer)
        return buffer
    }

    private static func set(_ headers: inout HTTPHeaders, _ name: String, _ value: String, present: Bool, keep: Bool) {
        if !present {
            headers.add(name: name, value: value)
        } else if !keep {
            headers.replaceOrAdd(name: name, value: value)
        }
    }
}
