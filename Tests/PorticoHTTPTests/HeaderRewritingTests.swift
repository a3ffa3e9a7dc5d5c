import NIOHTTP1
import Testing

@testable import PorticoHTTP

@Suite("Header rewriting (pure)")
struct HeaderRewritingTests {
    @Test func factsDetectFramingAndHopByHop() {
        let facts = RequestHeadFacts(
            HTTPHeaders([
                ("Host", "App.Example"), ("Transfer-Encoding", "gzip, chunked"), ("content-length", "3, 3"),
                ("Connection", "keep-alive, X-Private"), ("Expect", "100-continue"),
            ])
        )
        #expect(facts.host == "App.Example")
        #expect(facts.transferEncodingCount == 2)
        #expect(facts.transferEncodingIsChunked)
        #expect(facts.contentLength == 3)
        #expect(!facts.conflictingContentLength)
        #expect(facts.expectsContinue)
        #expect(facts.hopByHop == HopByHopHeaders.connection)
        #expect(facts.connection.keepAlive && facts.connection.namesHeaders && !facts.connection.close)
        #expect(
            RequestHeadFacts(HTTPHeaders([("Content-Length", "3"), ("Content-Length", "4")])).conflictingContentLength
        )
        #expect(RequestHeadFacts(HTTPHeaders([("Content-Length", "-1")])).conflictingContentLength)
        // Digits only: Swift's Int parser would take a sign.
        #expect(RequestHeadFacts(HTTPHeaders([("Content-Length", "+3")])).conflictingContentLength)
        // A Transfer-Encoding field without a coding is not chunked, so it is refused, not ignored.
        let empty = RequestHeadFacts(HTTPHeaders([("Transfer-Encoding", " ")]))
        #expect(empty.transferEncodingCount == 1 && !empty.transferEncodingIsChunked)
        let close = RequestHeadFacts(HTTPHeaders([("Connection", "Keep-Alive, close")]))
        #expect(close.connection.close && close.connection.keepAlive && !close.connection.namesHeaders)
        #expect(!close.isKeepAlive(.http1_1) && close.isKeepAlive(.http1_0))
    }

    @Test func hopByHopRemovalKeepsUpgradeOnlyForUpgrades() {
        var headers = HTTPHeaders([
            ("Connection", "Upgrade, X-Private"), ("Upgrade", "websocket"), ("X-Private", "1"), ("Keep-Alive", "5"),
            ("X-Kept", "yes"),
        ])
        let facts = RequestHeadFacts(headers)
        #expect(facts.isUpgrade)
        headers.removeHopByHop(present: facts.hopByHop, connection: facts.connection, keepUpgrade: true)
        #expect(headers["upgrade"] == ["websocket"])
        #expect(headers["connection"] == ["upgrade"])
        #expect(headers["x-private"].isEmpty && headers["keep-alive"].isEmpty)
        #expect(headers["x-kept"] == ["yes"])

        var response = HTTPHeaders([("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("Content-Length", "1")])
        let keepsAlive = response.removeHopByHopFromResponse(keepUpgrade: false, version: .http1_1)
        #expect(keepsAlive)
        #expect(response.map(\.name) == ["Content-Length"])
        // The keep-alive decision follows the version's default and the Connection tokens.
        var closing = HTTPHeaders([("Connection", "Close")])
        let closes = !closing.removeHopByHopFromResponse(keepUpgrade: false, version: .http1_1)
        #expect(closes)
        var old = HTTPHeaders([("Content-Length", "1")])
        let oldCloses = !old.removeHopByHopFromResponse(keepUpgrade: false, version: .http1_0)
        #expect(oldCloses)
    }

    @Test func forwardedHeadersAppendOnlyWhenTrusted() {
        let incoming = HTTPHeaders([("Host", "a"), ("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-Proto", "https")])
        var untrusted = incoming
        ForwardingContext(clientAddress: "10.0.0.9", trusted: false, scheme: "http", localPort: "80")
            .apply(to: &untrusted, facts: RequestHeadFacts(incoming))
        #expect(untrusted["x-forwarded-for"] == ["10.0.0.9"])
        #expect(untrusted["x-forwarded-proto"] == ["http"])
        #expect(untrusted["x-forwarded-port"] == ["80"])
        var trusted = incoming
        ForwardingContext(clientAddress: "10.0.0.9", trusted: true, scheme: "http", localPort: "80")
            .apply(to: &trusted, facts: RequestHeadFacts(incoming))
        #expect(trusted["x-forwarded-for"] == ["1.1.1.1, 10.0.0.9"])
        #expect(trusted["x-forwarded-proto"] == ["https"])
        #expect(trusted["x-real-ip"] == ["10.0.0.9"])
    }
}
