import NIOCore
import PorticoHTTP
import PorticoL4
import Testing

extension PorticoHTTPEngineTests {
    /// `portico.dev/accept-proxy-protocol-from` on HTTP listeners: a trusted peer's PROXY
    /// header (v1 or v2) carries the client address; other peers' bytes are not parsed.
    @Suite("PROXY protocol on HTTP listeners")
    struct ProxyProtocolTests {
        private static let request = "GET /who HTTP/1.1\r\nHost: x\r\n\r\n"

        private func configuration(_ upstream: TestUpstream, trusting: String?) throws -> HTTPEngineConfiguration {
            let ranges = try trusting.map { [try #require(IPAddressRange($0))] } ?? []
            let documentation = try #require(IPAddressRange("203.0.113.0/24"))
            return HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .http, acceptProxyProtocolFrom: ranges)],
                routes: TestSupport.routes([
                    (Optional("x"), "/", HTTPRoute(service: "default/a", pool: "a")),
                    (
                        Optional("x"), "/restricted",
                        HTTPRoute(service: "default/a", pool: "a", allowedSources: [documentation])
                    ),
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
        }

        private func expectCarriedClient(_ response: TestResponse, _ address: String) {
            #expect(response.status == 200)
            #expect(response.body.contains("x-forwarded-for: \(address)\n"))
            #expect(response.body.contains("x-real-ip: \(address)\n"))
        }

        @Test func v1HeaderSetsTheClientAddress() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream, trusting: "127.0.0.0/8")) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + Self.request)
                self.expectCarriedClient(try await client.readResponse(), "203.0.113.7")
                // Later requests on the connection keep the carried address, also for source ranges.
                try await client.send("GET /restricted HTTP/1.1\r\nHost: x\r\n\r\n")
                self.expectCarriedClient(try await client.readResponse(), "203.0.113.7")
                await client.close()
            }
        }

        @Test func v2HeaderSetsTheClientAddress() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream, trusting: "127.0.0.1")) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                var bytes = ByteBuffer()
                ProxyHeader(
                    source: try SocketAddress(ipAddress: "198.51.100.20", port: 40000),
                    destination: try SocketAddress(ipAddress: "127.0.0.1", port: 80)
                ).write(version: .v2, to: &bytes)
                bytes.writeString(Self.request)
                try await client.send(bytes)
                self.expectCarriedClient(try await client.readResponse(), "198.51.100.20")
                await client.close()
            }
        }

        @Test func headerSplitAcrossWrites() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream, trusting: "127.0.0.0/8")) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("PROXY TCP4 203.0.")
                try await Task.sleep(nanoseconds: 50_000_000)
                try await client.send("113.7 127.0.0.1 5555 80\r\nGET /who HT")
                try await Task.sleep(nanoseconds: 50_000_000)
                try await client.send("TP/1.1\r\nHost: x\r\n\r\n")
                self.expectCarriedClient(try await client.readResponse(), "203.0.113.7")
                await client.close()
            }
        }

        @Test func malformedHeaderClosesTheConnection() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream, trusting: "127.0.0.0/8")) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("PROXY TCP4 203.0.113.999 127.0.0.1 5555 80\r\n" + Self.request)
                #expect(try await client.waitForClose())
                #expect(client.unparsed.isEmpty)
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 0)

                // A trusted peer must send a header: plain HTTP is not one.
                let plain = try await TestSupport.connect(ports[.http])
                try await plain.send(Self.request)
                #expect(try await plain.waitForClose())
                #expect(plain.unparsed.isEmpty)
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 0)
            }
        }

        @Test func reloadChangesTheTrustedPeersWithoutRebinding() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream, trusting: nil)) { engine, ports in
                let port = try #require(ports[.http])
                // Same address, port (0) and kind: the same listener, kept bound.
                try await engine.apply(try self.configuration(upstream, trusting: "127.0.0.0/8"))
                #expect(engine.boundListeners.values.map(\.port) == [port])
                let client = try await TestSupport.connect(port)
                try await client.send("PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + Self.request)
                self.expectCarriedClient(try await client.readResponse(), "203.0.113.7")
                await client.close()
            }
        }

        @Test func untrustedPeerIsNotParsed() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(try self.configuration(upstream, trusting: nil)) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + Self.request)
                #expect(try await client.readResponse().status == 400)
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 0)
                await client.close()

                // Plain requests are served with the peer as client.
                let plain = try await TestSupport.connect(ports[.http])
                try await plain.send(Self.request)
                self.expectCarriedClient(try await plain.readResponse(), "127.0.0.1")
                try await plain.send("GET /restricted HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await plain.readResponse().status == 403)
                await plain.close()
            }
        }
    }
}
