import NIOCore
import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    /// ingress-nginx `whitelist-source-range` / `allowlist-source-range`: clients outside the
    /// route's ranges get 403; the connection stays usable when no request body is left unread.
    @Suite("Allowed source ranges")
    struct SourceRangeTests {
        private func configuration(_ upstream: TestUpstream) throws -> HTTPEngineConfiguration {
            let loopback = try #require(IPAddressRange("127.0.0.1/32"))
            let privateNet = try #require(IPAddressRange("10.0.0.0/8"))
            return HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (Optional("x"), "/", HTTPRoute(service: "default/a", pool: "a", allowedSources: [loopback])),
                    (
                        Optional("x"), "/private",
                        HTTPRoute(service: "default/a", pool: "a", allowedSources: [privateNet])
                    ),
                    (Optional("x"), "/open", HTTPRoute(service: "default/a", pool: "a")),
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
        }

        @Test func clientOutsideTheRangesGets403AndKeepsTheConnection() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream)) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /allowed HTTP/1.1\r\nHost: x\r\n\r\n")
                let allowed = try await client.readResponse()
                #expect(allowed.status == 200)
                #expect(allowed.body.hasPrefix("upstream a GET /allowed\n"))

                try await client.send("GET /private/x HTTP/1.1\r\nHost: x\r\n\r\n")
                let denied = try await client.readResponse()
                #expect(denied.status == 403)
                #expect(
                    denied.body
                        == "403 forbidden: client 127.0.0.1 is not in the allowed source ranges of this route\n"
                )
                #expect(denied.header("connection") != "close")

                // A fully read body keeps the connection too.
                try await client.send("POST /private/y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                #expect(try await client.readResponse().status == 403)

                // Keep-alive survived the 403s.
                try await client.send("GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /open\n"))
                await client.close()
            }
        }

        @Test func deniedRequestWithUnreadBodyClosesTheConnection() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream)) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("POST /private HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
                let denied = try await client.readResponse()
                #expect(denied.status == 403)
                #expect(denied.header("connection") == "close")
                #expect(try await client.waitForClose())
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 0)
            }
        }
    }
}
