import NIOHPACK
import NIOHTTP1
import Testing

@testable import PorticoHTTP

/// Portico's own check of HTTP/2 request blocks (NIOHTTP2's is switched off), fed blocks
/// directly; HTTP2FrameTests sends the same kinds over a connection.
@Suite("HTTP/2 request blocks")
struct HTTP2RequestBlockTests {
    private static let pseudo: [(String, String)] = [
        (":method", "GET"), (":scheme", "https"), (":path", "/a?b"), (":authority", "x.test"),
    ]

    private func parse(_ fields: [(String, String)]) -> HTTP2RequestBlock {
        HTTP2RequestBlock(HPACKHeaders(fields))
    }

    @Test func aWellFormedRequestBecomesAnHTTP1StyleHead() throws {
        let block = self.parse(
            Self.pseudo + [
                ("host", "ignored.test"), ("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2"),
                ("content-length", "3"), ("content-length", "3"), ("te", "trailers"), ("x-tab", "a\tb"),
            ]
        )
        guard case .request(let head, let length) = block else {
            Issue.record("not a request: \(block)")
            return
        }
        #expect(length == 3)
        #expect(head.method == .GET)
        #expect(head.uri == "/a?b")
        #expect(head.version == .http2)
        #expect(head.headers["host"] == ["x.test"], ":authority wins over host")
        #expect(head.headers["cookie"] == ["a=1; b=2"])
        #expect(head.headers["content-length"] == ["3"], "equal lengths become one field")
        #expect(head.headers["accept"] == ["*/*"])
        #expect(head.headers["x-tab"] == ["a\tb"])

        guard case .request(let bare, nil) = self.parse(Array(Self.pseudo.prefix(3))) else {
            Issue.record("a request without :authority is well-formed")
            return
        }
        #expect(!bare.headers.contains(name: "host"))
        guard case .request = self.parse([(":method", "OPTIONS"), (":scheme", "http"), (":path", "*")]) else {
            Issue.record("OPTIONS * is a request")
            return
        }
        #expect(self.parse([(":method", "CONNECT"), (":authority", "x.test:443")]) == .connect)
    }

    /// Each of these is a malformed request by RFC 9113 8.1.1, 8.2 or 8.3 (or carries what
    /// cannot go on to an HTTP/1.1 upstream): none may become a head.
    private static let malformed: [(String, [(String, String)])] = [
        ("uppercase name", Self.pseudo + [("X-Upper", "1")]),
        ("space in name", Self.pseudo + [("x y", "1")]),
        ("empty name", Self.pseudo + [("", "1")]),
        ("connection", Self.pseudo + [("connection", "close")]),
        ("keep-alive", Self.pseudo + [("keep-alive", "timeout=5")]),
        ("proxy-connection", Self.pseudo + [("proxy-connection", "keep-alive")]),
        ("transfer-encoding", Self.pseudo + [("transfer-encoding", "chunked")]),
        ("upgrade", Self.pseudo + [("upgrade", "websocket")]),
        ("te not trailers", Self.pseudo + [("te", "gzip")]),
        ("CR LF in a value", Self.pseudo + [("x", "a\r\nx-injected: 1")]),
        ("NUL in a value", Self.pseudo + [("x", "a\u{0}b")]),
        ("other control in a value", Self.pseudo + [("x", "a\u{1}b")]),
        ("pseudo after regular", [(":method", "GET"), (":scheme", "https"), ("x", "1"), (":path", "/")]),
        ("pseudo after cookie", [(":method", "GET"), (":scheme", "https"), ("cookie", "a"), (":path", "/")]),
        ("status in a request", Self.pseudo + [(":status", "200")]),
        ("protocol", Self.pseudo + [(":protocol", "websocket")]),
        ("unknown pseudo", [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":x", "1")]),
        ("path twice", Self.pseudo + [(":path", "/b")]),
        ("no method", [(":scheme", "https"), (":path", "/")]),
        ("no scheme", [(":method", "GET"), (":path", "/")]),
        ("no path", [(":method", "GET"), (":scheme", "https")]),
        ("empty path", [(":method", "GET"), (":scheme", "https"), (":path", "")]),
        ("path not origin-form", [(":method", "GET"), (":scheme", "https"), (":path", "a/b")]),
        ("asterisk but not OPTIONS", [(":method", "GET"), (":scheme", "https"), (":path", "*")]),
        ("space in path", [(":method", "GET"), (":scheme", "https"), (":path", "/a HTTP/1.1")]),
        ("method not a token", [(":method", "G T"), (":scheme", "https"), (":path", "/")]),
        ("CONNECT without authority", [(":method", "CONNECT")]),
        ("CONNECT with path", [(":method", "CONNECT"), (":scheme", "https"), (":path", "/x"), (":authority", "x:1")]),
        ("CONNECT with scheme", [(":method", "CONNECT"), (":scheme", "https"), (":authority", "x:1")]),
        ("CR LF in authority", [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a\r\nb")]),
        ("space in authority", [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a b")]),
        ("empty method", [(":method", ""), (":scheme", "https"), (":path", "/")]),
        ("content-length of 19 digits", Self.pseudo + [("content-length", "1234567890123456789")]),
        ("content-length with a sign", Self.pseudo + [("content-length", "+5")]),
        ("empty content-length", Self.pseudo + [("content-length", "")]),
        ("content-length not digits", Self.pseudo + [("content-length", "5x")]),
        ("content-length list", Self.pseudo + [("content-length", "5, 5")]),
        ("content-lengths differ", Self.pseudo + [("content-length", "5"), ("content-length", "6")]),
        ("content-length negative", Self.pseudo + [("content-length", "-1")]),
    ]

    @Test(arguments: Self.malformed)
    func malformedBlocksAreRefused(_ name: String, _ fields: [(String, String)]) {
        guard case .malformed = self.parse(fields) else {
            Issue.record("\(name): accepted")
            return
        }
    }

    /// The other direction: what Portico sends (NIOHTTP2 no longer checks it).
    @Test func responseBlocksAndTrailersLeaveConnectionSpecificFieldsOut() {
        var headers = HTTPHeaders([
            ("Content-Type", "text/plain"), ("Connection", "keep-alive"), ("Keep-Alive", "5"),
            ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"), ("Proxy-Connection", "x"), ("Content-Length", "0"),
        ])
        var block = HTTP2ServerConnection.responseBlock(
            HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
        )
        #expect(block.map(\.name) == [":status", "content-type", "content-length"])
        block = HTTP2ServerConnection.responseBlock(
            HTTPResponseHead(version: .http1_1, status: .noContent, headers: headers)
        )
        #expect(block.map(\.name) == [":status", "content-type"], "no length on a 204")
        headers = HTTPHeaders([("X-Sum", "1"), ("Connection", "close"), ("TE", "trailers"), ("Upgrade", "x")])
        #expect(HTTP2ServerConnection.trailersBlock(headers).map(\.name) == ["x-sum"])
    }

    @Test func trailersAreCheckedLikeRequestFields() {
        #expect(HTTP2RequestBlock.trailersProblem(HPACKHeaders([("x-checksum", "abc")])) == nil)
        #expect(HTTP2RequestBlock.trailersProblem(HPACKHeaders([(":path", "/")])) != nil)
        #expect(HTTP2RequestBlock.trailersProblem(HPACKHeaders([("Upper", "1")])) != nil)
        #expect(HTTP2RequestBlock.trailersProblem(HPACKHeaders([("connection", "close")])) != nil)
        #expect(HTTP2RequestBlock.trailersProblem(HPACKHeaders([("x", "a\nb")])) != nil)
    }
}
