import NIOCore
import NIOHTTP1
import Testing

@testable import PorticoHTTP

/// Portico's own HTTP/1.1 decoders and encoder (the proxy path's codec), fed bytes directly.
@Suite("HTTP/1.1 codec")
struct HTTP1CodecTests {
    private let limits = HTTP1HeadLimits(maxRequestLineSize: 64, maxFieldSize: 128, maxHeadSize: 512)

    /// Every request part `bytes` decode to, fed in pieces of `split` bytes (0: all at once).
    private func requestParts(_ bytes: String, split: Int = 0) throws -> [HTTPServerRequestPart] {
        var decoder = HTTP1RequestDecoder(limits: self.limits)
        var parts: [HTTPServerRequestPart] = []
        var buffer = ByteBuffer()
        let all = Array(bytes.utf8)
        var offset = 0
        repeat {
            let end = split == 0 ? all.count : min(all.count, offset + split)
            buffer.writeBytes(all[offset..<end])
            offset = end
            while let part = try decoder.next(&buffer) { parts.append(part) }
        } while offset < all.count
        return parts
    }

    private func body(_ parts: [HTTPServerRequestPart]) -> String {
        parts.reduce(into: "") { text, part in
            if case .body(let buffer) = part { text += String(buffer: buffer) }
        }
    }

    @Test func pipelinedRequestsDecodeInOrderWhateverTheReadBoundaries() throws {
        let bytes =
            "\r\nGET /a?x=1 HTTP/1.1\r\nHost: one\r\nX-Long:  padded value \t\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: two\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /c HTTP/1.0\nhost: three\ntransfer-encoding: chunked\n\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
        for split in [0, 1, 7] {
            let parts = try self.requestParts(bytes, split: split)
            let heads = parts.compactMap { part -> HTTPRequestHead? in
                if case .head(let head) = part { return head }
                return nil
            }
            #expect(heads.map(\.uri) == ["/a?x=1", "/b", "/c"], "split \(split)")
            #expect(heads.map(\.method) == [.GET, .POST, .PUT])
            #expect(heads[2].version == .http1_0)
            #expect(heads[0].headers["x-long"] == ["padded value"])
            #expect(heads[1].headers["host"] == ["two"])
            #expect(self.body(parts) == "helloabcde")
            let ends = parts.compactMap { part -> HTTPHeaders?? in
                if case .end(let trailers) = part { return trailers }
                return nil
            }
            #expect(ends.count == 3)
            #expect(ends[2]?["x-trailer"] == ["t"])
        }
    }

    @Test func smugglingAndMalformedHeadsAreRefused() throws {
        let cases: [(String, HTTP1ParseError)] = [
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", .invalidFieldName),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", .obsoleteLineFolding),
            ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", .invalidFieldValue),
            ("GET / HTTP/1.1\r\nX: \u{1}\r\n\r\n", .invalidFieldValue),
            ("GET /a b HTTP/1.1\r\n\r\n", .invalidRequestLine),
            ("GET / HTTP/2.0\r\n\r\n", .unsupportedVersion),
            ("GET / HTTX/1.1\r\n\r\n", .invalidRequestLine),
            ("G(T / HTTP/1.1\r\n\r\n", .invalidRequestLine),
            ("POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", .invalidChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", .invalidChunk),
            ("GET /\(String(repeating: "a", count: 80)) HTTP/1.1\r\n\r\n", .requestLineTooLong),
            ("GET / HTTP/1.1\r\nX: \(String(repeating: "a", count: 200))\r\n\r\n", .headerSectionTooLarge),
        ]
        for (bytes, expected) in cases {
            #expect(throws: expected, "\(bytes.debugDescription)") { try self.requestParts(bytes) }
        }
        // Too long before the line even ends: refused without waiting for the rest.
        #expect(throws: HTTP1ParseError.requestLineTooLong) {
            try self.requestParts("GET /\(String(repeating: "a", count: 80))")
        }
        var many = "GET / HTTP/1.1\r\n"
        for index in 0..<40 { many += "X-\(index): value\r\n" }
        #expect(throws: HTTP1ParseError.headerSectionTooLarge) { try self.requestParts(many) }
    }

    @Test(arguments: [
        ("5", 5, true), (" 5 , 5 ", 5, true), ("\t12\t", 12, true), ("5, 6", 6, false), ("5 5", 55, false),
        ("5,", 0, false), ("", 0, false), ("+5", 0, false), ("0x5", 0, false), ("1234567890123456789", 0, false),
    ])
    func contentLengthIsAListOfAgreeingDigitRuns(value: String, parsed: Int, valid: Bool) {
        var length: Int?
        #expect(FramingFields.readContentLength(value, into: &length) == valid)
        if valid { #expect(length == parsed) }
        // A second field must agree with the first.
        var twice: Int? = 7
        #expect(!FramingFields.readContentLength("5", into: &twice))
    }

    @Test func anUpgradeRequestStopsTheDecoderBeforeTheNewProtocolsBytes() throws {
        var decoder = HTTP1RequestDecoder(limits: self.limits)
        var buffer = ByteBuffer(
            string: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{81}\u{0}frame"
        )
        guard case .head = try decoder.next(&buffer), case .end = try decoder.next(&buffer) else {
            Issue.record("expected head and end")
            return
        }
        #expect(decoder.isStopped)
        #expect(try decoder.next(&buffer) == nil)
        #expect(String(buffer: buffer) == "\u{81}\u{0}frame")  // left for the tunnel
    }

    @Test func responsesAreFramedByStatusMethodLengthChunksOrClose() throws {
        func decode(_ text: String, head: Bool = false) throws -> (HTTPResponseHead?, String, Int, HTTP1ResponseDecoder)
        {
            var decoder = HTTP1ResponseDecoder(limits: self.limits)
            decoder.answeringHEAD = head
            var buffer = ByteBuffer(string: text)
            var first: HTTPResponseHead?
            var body = ""
            var ends = 0
            while let part = try decoder.next(&buffer) {
                switch part {
                case .head(let value): if first == nil || first!.status.code < 200 { first = value }
                case .body(let bytes): body += String(buffer: bytes)
                case .end: ends += 1
                }
            }
            return (first, body, ends, decoder)
        }
        var result = try decode("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n")
        #expect(result.0?.status == .ok && result.1 == "abc" && result.2 == 2)
        result = try decode("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", head: true)
        #expect(result.2 == 1 && result.3.isAtMessageBoundary)
        result = try decode(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        )
        #expect(result.0?.status == .created && result.1 == "hi" && result.2 == 1)
        result = try decode("HTTP/1.0 200 OK\r\n\r\nuntil close")
        #expect(result.1 == "until close" && result.2 == 0)
        var decoder = result.3
        guard case .end = decoder.connectionClosed() else {
            Issue.record("the close ends a close-delimited body")
            return
        }
        result = try decode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\u{81}")
        #expect(result.2 == 1 && result.3.isStopped)
        #expect(throws: HTTP1ParseError.invalidStatusLine) { try decode("HTTP/1.1 20 OK\r\n\r\n") }
        #expect(throws: HTTP1ParseError.invalidContentLength) {
            try decode("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
        }
        // Only `chunked` alone frames a body the proxy passes on: any other coding would reach
        // the client without its label (the coded bytes taken for the content).
        for codings in ["gzip", "gzip, chunked", "chunked, chunked", "chunked\r\nTransfer-Encoding: chunked"] {
            #expect(throws: HTTP1ParseError.unsupportedTransferCoding, "\(codings)") {
                try decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: \(codings)\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
            }
        }
        // No body follows (HEAD, 304): nothing to decode, nothing refused.
        result = try decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", head: true)
        #expect(result.0?.status == .ok && result.2 == 1)
        result = try decode("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n")
        #expect(result.0?.status == .notModified && result.2 == 1)
    }

    @Test func responseHopByHopFieldsAreLeftOutWhileDecoding() throws {
        func head(_ text: String) throws -> (HTTPResponseHead, HTTP1ResponseDecoder) {
            var decoder = HTTP1ResponseDecoder(limits: self.limits)
            var buffer = ByteBuffer(string: text)
            guard case .head(let head) = try decoder.next(&buffer) else {
                throw HTTP1ParseError.invalidStatusLine
            }
            return (head, decoder)
        }
        var (response, decoder) = try head(
            "HTTP/1.1 200 OK\r\nCONNECTION: Close, X-Private\r\nKeep-Alive: timeout=5\r\nX-Private: secret\r\n"
                + "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n"
                + "Content-Length: 2\r\nX-Kept: yes\r\n\r\nok"
        )
        #expect(response.headers.map(\.name) == ["Content-Length", "X-Kept"])
        #expect(decoder.removedHopByHop?.close == true)
        #expect(decoder.removedHopByHop?.isKeepAlive(.http1_1) == false)
        // Chunked framing is still read from the fields that stay.
        (response, decoder) = try head(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        #expect(response.headers.map(\.name) == ["Transfer-Encoding"])
        #expect(decoder.removedHopByHop?.isKeepAlive(.http1_0) == true)
        var buffer = ByteBuffer(string: "2\r\nhi\r\n0\r\n\r\n")
        guard case .body(let body) = try decoder.next(&buffer) else {
            Issue.record("a chunked body follows")
            return
        }
        #expect(String(buffer: body) == "hi")
        // A protocol switch keeps everything: the proxy decides what goes on.
        (response, decoder) = try head(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        #expect(response.headers.map(\.name) == ["Connection", "Upgrade"])
        #expect(decoder.removedHopByHop == nil)
    }

    @Test func responseFieldsPassAsBytesOnlyWhenNothingChangesThem() throws {
        func decode(_ text: String) throws -> (HTTPResponseHead, RawResponseFields?) {
            var decoder = HTTP1ResponseDecoder(limits: self.limits)
            decoder.passFieldsRaw = true
            var buffer = ByteBuffer(string: text)
            guard case .head(let head) = try decoder.next(&buffer) else {
                throw HTTP1ParseError.invalidStatusLine
            }
            return (head, decoder.rawFields)
        }
        // A length: the kept lines as bytes (bare LF ends become CR LF), no fields in the head.
        var (head, raw) = try decode(
            "HTTP/1.1 200 OK\nServer: up\nConnection: keep-alive\nContent-Length: 2\r\nX-A:  b \r\n\r\nok"
        )
        #expect(head.headers.isEmpty)
        #expect(raw.map { String(buffer: $0.bytes) } == "Server: up\r\nContent-Length: 2\r\nX-A:  b\r\n")
        #expect(raw?.chunked == false)
        // `chunked` alone, however written: the encoder writes its own field (as when it
        // encodes from strings), so odd spellings do not reach the client.
        for coding in ["Chunked", "chunked,", " , chunked"] {
            (head, raw) = try decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: \(coding)\r\nX-A: b\r\n\r\n")
            #expect(raw.map { String(buffer: $0.bytes) } == "X-A: b\r\n", "\(coding)")
            #expect(raw?.chunked == true, "\(coding)")
        }
        // Anything the encoder would change, or the proxy must read, comes as fields.
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n",  // delimited by the close
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        ] {
            (head, raw) = try decode(text)
            #expect(raw == nil, "\(text)")
            #expect(!head.headers.isEmpty, "\(text)")
        }
        // A field named by Connection goes, wherever it is.
        (head, raw) = try decode(
            "HTTP/1.1 200 OK\r\nX-Private: 1\r\nConnection: x-private\r\nContent-Length: 0\r\nX-Kept: 2\r\n\r\n"
        )
        #expect(raw == nil)
        #expect(head.headers.map(\.name) == ["Content-Length", "X-Kept"])

        // The encoder writes the status line, the bytes, then the proxy's own fields.
        var encoder = HTTP1Encoder()
        var out = ByteBuffer()
        let fields = RawResponseFields(bytes: ByteBuffer(string: "Content-Length: 2\r\n"), chunked: false)
        encoder.writeResponseHead(
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["set-cookie": "a=b"]),
            answeringHEAD: false,
            raw: fields,
            into: &out
        )
        #expect(String(buffer: out) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nset-cookie: a=b\r\n\r\n")
        #expect(encoder.framing == .raw)
        encoder.writeResponseHead(
            HTTPResponseHead(version: .http1_1, status: .ok),
            answeringHEAD: true,
            raw: fields,
            into: &out
        )
        #expect(encoder.framing == .suppressed)
        out.clear()
        encoder.writeResponseHead(
            HTTPResponseHead(version: .http1_1, status: .ok),
            answeringHEAD: false,
            raw: RawResponseFields(bytes: ByteBuffer(string: "X-A: b\r\n"), chunked: true),
            into: &out
        )
        #expect(String(buffer: out) == "HTTP/1.1 200 OK\r\nX-A: b\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(encoder.framing == .chunked)
    }

    @Test func requestFieldsPassAsBytesOnlyWhenNothingChangesThem() throws {
        func decode(_ text: String) throws -> (HTTPRequestHead, ByteBuffer?, RequestHeadFacts) {
            var decoder = HTTP1RequestDecoder(limits: self.limits)
            decoder.passFieldsRaw = true
            var buffer = ByteBuffer(string: text)
            guard case .head(let head) = try decoder.next(&buffer) else {
                throw HTTP1ParseError.invalidRequestLine
            }
            return (head, decoder.rawFields, decoder.headFacts)
        }
        // HTTP/1.1 with the usual fields: the lines as bytes (bare LF ends become CR LF, the
        // usual hop-by-hop fields left out), what the proxy reads from them in the facts.
        var (head, raw, facts) = try decode(
            "POST /a?b HTTP/1.1\nHost: x.test\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                + "Proxy-Connection: keep-alive\r\nContent-Length: 2\nAccept:  */* \r\nHost: y.test\r\n\r\nok"
        )
        #expect(head.headers.isEmpty)
        #expect(head.uri == "/a?b")
        #expect(
            raw.map { String(buffer: $0) } == "Host: x.test\r\nContent-Length: 2\r\nAccept:  */*\r\nHost: y.test\r\n"
        )
        #expect(facts.host == "x.test")
        #expect(facts.contentLength == 2)
        #expect(facts.isKeepAlive(.http1_1))
        #expect(facts.hopByHop.isEmpty)
        (head, raw, facts) = try decode("GET / HTTP/1.1\r\nHost: x.test\r\nConnection: Close\r\n\r\n")
        #expect(raw.map { String(buffer: $0) } == "Host: x.test\r\n")
        #expect(!facts.isKeepAlive(.http1_1))
        #expect(throws: HTTP1ParseError.invalidContentLength, "as on the string path") {
            try decode("GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n")
        }

        // Anything the proxy changes, answers or must read as a string comes as fields, with
        // the facts the string path gives.
        for text in [
            "GET / HTTP/1.0\r\nHost: x.test\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nTE: trailers\r\n\r\n",
            "GET / HTTP/1.1\r\nTrailer: x-sum\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
            "GET / HTTP/1.1\r\nx-forwarded-proto: https\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Forwarded-Host: a\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Forwarded-Port: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nX-Real-IP: 10.0.0.1\r\n\r\n",
            "GET / HTTP/1.1\r\nSSL-Client-Verify: SUCCESS\r\n\r\n",
        ] {
            (head, raw, facts) = try decode(text)
            #expect(raw == nil, "\(text)")
            #expect(!head.headers.isEmpty, "\(text)")
            #expect(facts.transferEncodingCount == RequestHeadFacts(head.headers).transferEncodingCount)
            #expect(facts.expectsContinue == RequestHeadFacts(head.headers).expectsContinue)
        }
        // Malformed fields fail the same way on both paths.
        #expect(throws: HTTP1ParseError.invalidFieldName) { try decode("GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n") }
        #expect(throws: HTTP1ParseError.obsoleteLineFolding) {
            try decode("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n")
        }

        // The lines as strings again (for a policy that needs them), and the encoder's output:
        // the request line, the lines, the proxy's own; a POST without a length goes chunked.
        (head, raw, _) = try decode("PUT /u HTTP/1.1\r\nHost: x.test\r\nX-A:\tb\r\n\r\n")
        let fields = RawRequestFields.headers(of: raw!)
        #expect(fields["host"] == ["x.test"])
        #expect(fields["x-a"] == ["b"])
        var bytes = raw!
        ForwardingContext(clientAddress: "192.0.2.1", trusted: false, scheme: "http", localPort: "80")
            .append(to: &bytes, host: "x.test")
        var encoder = HTTP1Encoder()
        var out = ByteBuffer()
        encoder.writeRequestHead(head, rawFields: bytes, hasLength: false, into: &out)
        #expect(
            String(buffer: out)
                == "PUT /u HTTP/1.1\r\nHost: x.test\r\nX-A:\tb\r\nx-forwarded-for: 192.0.2.1\r\n"
                + "x-forwarded-proto: http\r\nx-forwarded-host: x.test\r\nx-forwarded-port: 80\r\n"
                + "x-real-ip: 192.0.2.1\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        #expect(encoder.framing == .chunked)
        out.clear()
        head.method = .GET
        encoder.writeRequestHead(head, rawFields: raw!, hasLength: false, into: &out)
        #expect(String(buffer: out) == "GET /u HTTP/1.1\r\nHost: x.test\r\nX-A:\tb\r\n\r\n")
        #expect(encoder.framing == .raw)
    }

    /// For requests both can take, the bytes path and the string path write an upstream the
    /// same request (single spaces after the colons, as the string path writes them).
    @Test func bothRequestPathsWriteTheSameBytes() throws {
        let forwarding = ForwardingContext(
            clientAddress: "192.0.2.1",
            trusted: false,
            scheme: "https",
            localPort: "443"
        )
        for text in [
            "GET /a HTTP/1.1\r\nHost: x.test\r\nAccept: */*\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: x.test\r\nContent-Length: 3\r\n\r\nabc",
            "POST /p HTTP/1.1\r\nHost: x.test\r\n\r\n",
            "PUT /p HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5, 5\r\n\r\nhello",
            "HEAD /h HTTP/1.1\r\nHost: x.test\r\nContent-Length: 0\r\n\r\n",
            "GET /g HTTP/1.1\r\nHost: x.test\r\nContent-Length: 2\r\n\r\nhi",
            "DELETE /d HTTP/1.1\r\nhost: X.Test\r\nProxy-Connection: a\r\nConnection: close\r\nX-Empty: \r\n\r\n",
        ] {
            var outputs: [String] = []
            for raw in [false, true] {
                var decoder = HTTP1RequestDecoder(limits: HTTP1HeadLimits())
                decoder.passFieldsRaw = raw
                var buffer = ByteBuffer(string: text)
                guard case .head(var head) = try decoder.next(&buffer) else {
                    Issue.record("no head: \(text)")
                    return
                }
                let facts = decoder.headFacts
                var encoder = HTTP1Encoder()
                var out = ByteBuffer()
                if raw {
                    var bytes = try #require(decoder.rawFields, "\(text)")
                    forwarding.append(to: &bytes, host: facts.host)
                    encoder.writeRequestHead(head, rawFields: bytes, hasLength: facts.contentLength != nil, into: &out)
                } else {
                    #expect(decoder.rawFields == nil)
                    if !facts.hopByHop.isEmpty {
                        head.headers.removeHopByHop(
                            present: facts.hopByHop,
                            connection: facts.connection,
                            keepUpgrade: false
                        )
                    }
                    forwarding.apply(to: &head.headers, facts: facts)
                    encoder.writeRequestHead(head, into: &out)
                }
                outputs.append(String(buffer: out) + "(framing \(encoder.framing))")
            }
            #expect(outputs[0] == outputs[1], "\(text)")
        }
    }

    @Test func anUpstreamLengthNextToAChunkedCodingIsDropped() throws {
        // The coding frames the body (RFC 9112 6.3); the length must not go on with the
        // decoded body, or the client would read the wrong number of bytes.
        for raw in [false, true] {
            var decoder = HTTP1ResponseDecoder(limits: self.limits)
            decoder.passFieldsRaw = raw
            var buffer = ByteBuffer(
                string:
                    "HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
            )
            guard case .head(let head) = try decoder.next(&buffer), case .body(let body) = try decoder.next(&buffer)
            else {
                Issue.record("head and body expected")
                return
            }
            #expect(!head.headers.contains(name: "content-length"))
            #expect(head.headers["transfer-encoding"] == ["chunked"])
            #expect(String(buffer: body) == "hi")
            var encoder = HTTP1Encoder()
            var out = ByteBuffer()
            encoder.writeResponseHead(head, answeringHEAD: false, into: &out)
            #expect(String(buffer: out) == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        }
    }

    @Test func theEncoderFramesLikeNIOsAndChunksWithoutCopyingParts() {
        let allocator = ByteBufferAllocator()
        var encoder = HTTP1Encoder()
        var buffer = ByteBuffer()
        // A POST without a length is sent chunked; GET keeps what it has.
        encoder.writeRequestHead(
            HTTPRequestHead(version: .http1_1, method: .POST, uri: "/up", headers: ["Host": "x"]),
            into: &buffer
        )
        #expect(String(buffer: buffer) == "POST /up HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n")
        var wire = ""
        for part in ["abc", "defghijklmnopqrstu"] {
            if let prefix = encoder.chunkPrefix(for: part.utf8.count, allocator: allocator) {
                wire += String(buffer: prefix)
            }
            wire += part
        }
        wire += String(buffer: encoder.end(trailers: ["grpc-status": "0"], allocator: allocator)!)
        #expect(wire == "3\r\nabc\r\n12\r\ndefghijklmnopqrstu\r\n0\r\ngrpc-status: 0\r\n\r\n")

        // A 204 loses its framing fields; a response to HEAD keeps them but sends no body.
        buffer.clear()
        encoder.writeResponseHead(
            HTTPResponseHead(version: .http1_1, status: .noContent, headers: ["Content-Length": "0"]),
            answeringHEAD: false,
            into: &buffer
        )
        #expect(String(buffer: buffer) == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(!encoder.writesBody)
        buffer.clear()
        encoder.writeResponseHead(
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "10"]),
            answeringHEAD: true,
            into: &buffer
        )
        #expect(String(buffer: buffer) == "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        #expect(!encoder.writesBody)
        // Without a length an HTTP/1.1 response body is chunked.
        buffer.clear()
        encoder.writeResponseHead(HTTPResponseHead(version: .http1_1, status: .ok), answeringHEAD: false, into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(encoder.end(trailers: nil, allocator: allocator).map { String(buffer: $0) } == "0\r\n\r\n")
    }
}
