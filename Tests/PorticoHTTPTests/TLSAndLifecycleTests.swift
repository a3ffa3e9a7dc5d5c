import NIOCore
import NIOSSL
import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    @Suite("TLS, upgrades and reloads")
    struct TLSAndLifecycleTests {
        private static let certificates = [
            TLSCertificate(
                serverNames: ["a.example.com"],
                certificateChainPEM: TestCertificates.exactCertificate,
                privateKeyPEM: TestCertificates.exactKey
            ),
            TLSCertificate(
                serverNames: ["*.wild.example.com"],
                certificateChainPEM: TestCertificates.wildCertificate,
                privateKeyPEM: TestCertificates.wildKey
            ),
        ]
        private static let defaultCertificate = TLSCertificate(
            serverNames: [],
            certificateChainPEM: TestCertificates.defaultCertificate,
            privateKeyPEM: TestCertificates.defaultKey
        )

        private func tlsConfiguration(_ upstream: TestUpstream, sslRedirect: Bool = false) -> HTTPEngineConfiguration {
            HTTPEngineConfiguration(
                listeners: [
                    HTTPListener(address: "127.0.0.1", port: 0, kind: .http),
                    HTTPListener(address: "127.0.0.1", port: 0, kind: .https),
                ],
                certificates: Self.certificates,
                defaultCertificate: Self.defaultCertificate,
                routes: TestSupport.routes([
                    (nil, "/", HTTPRoute(service: "default/a", pool: "a", sslRedirect: sslRedirect))
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
        }

        /// Connects with TLS (no verification) and returns the client and the leaf certificate served.
        private func connectTLS(_ port: Int?, serverName: String?) async throws -> (RawClient, NIOSSLCertificate?) {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            tls.applicationProtocols = ["http/1.1"]
            let context = try NIOSSLContext(configuration: tls)
            let client = try await RawClient.connect(
                port: port!,
                group: TestSupport.group,
                tls: context,
                serverName: serverName
            )
            try await client.send("GET /who HTTP/1.1\r\nHost: \(serverName ?? "none")\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(response.body.contains("\nx-forwarded-proto: https\n"))
            let channel = client.channel.channel
            let leaf = try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
            }.get()
            return (client, leaf)
        }

        @Test func certificateChosenBySNIExactWildcardDefault() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let exact = try NIOSSLCertificate(bytes: Array(TestCertificates.exactCertificate.utf8), format: .pem)
            let wild = try NIOSSLCertificate(bytes: Array(TestCertificates.wildCertificate.utf8), format: .pem)
            let fallback = try NIOSSLCertificate(bytes: Array(TestCertificates.defaultCertificate.utf8), format: .pem)
            try await TestSupport.withEngine(self.tlsConfiguration(upstream)) { _, ports in
                let cases: [(String?, NIOSSLCertificate)] = [
                    ("a.example.com", exact),
                    ("A.Example.COM", exact),
                    ("x.wild.example.com", wild),
                    ("y.x.wild.example.com", fallback),
                    ("other.example.com", fallback),
                    (nil, fallback),
                ]
                for (name, expected) in cases {
                    let (client, served) = try await self.connectTLS(ports[.https], serverName: name)
                    #expect(served == expected, "SNI \(name ?? "none")")
                    await client.close()
                }
            }
        }

        @Test func sslRedirectGives308OnPlainHTTPOnly() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.tlsConfiguration(upstream, sslRedirect: true)) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /p?q=1 HTTP/1.1\r\nHost: a.example.com:8080\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 308)
                #expect(response.header("location") == "https://a.example.com/p?q=1")
                await client.close()
                let (secure, _) = try await self.connectTLS(ports[.https], serverName: "a.example.com")
                await secure.close()
            }
        }

        @Test func upgradeTunnelsBytesBothWays() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a"))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 101)
                #expect(response.header("upgrade") == "echo")
                try await client.send("ping")
                var echoed = ""
                while echoed.count < "echo:ping".count {
                    echoed += try await client.readChunk()
                }
                #expect(echoed == "echo:ping")
                try await client.send("pong")
                echoed = ""
                while echoed.count < "echo:pong".count {
                    echoed += try await client.readChunk()
                }
                #expect(echoed == "echo:pong")
                await client.close()
            }
        }

        @Test func reloadKeepsListenersAndSwapsRoutes() async throws {
            let first = try await TestUpstream.start(name: "first", group: TestSupport.group)
            let second = try await TestUpstream.start(name: "second", group: TestSupport.group)
            defer {
                Task {
                    await first.stop()
                    await second.stop()
                }
            }
            var configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/first", pool: "p"))]),
                pools: ["p": UpstreamPool(endpoints: [TestSupport.endpoint(first)])]
            )
            try await TestSupport.withEngine(configuration) { engine, ports in
                let before = engine.boundListeners
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().header("x-upstream") == "first")

                configuration.listeners = Array(before.keys)
                configuration.routes = TestSupport.routes([(nil, "/", HTTPRoute(service: "default/second", pool: "p"))])
                configuration.pools = ["p": UpstreamPool(endpoints: [TestSupport.endpoint(second)])]
                try await engine.apply(configuration)
                #expect(engine.boundListeners == before)

                // The established connection is undisturbed and its next request sees the new routes.
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().header("x-upstream") == "second")
                await client.close()

                // A bad certificate is refused and the running configuration keeps serving.
                var broken = configuration
                broken.listeners.append(HTTPListener(address: "127.0.0.1", port: 0, kind: .https))
                broken.defaultCertificate = TLSCertificate(
                    serverNames: [],
                    certificateChainPEM: "x",
                    privateKeyPEM: "y"
                )
                await #expect(throws: (any Error).self) { try await engine.apply(broken) }
                let again = try await TestSupport.connect(ports[.http])
                try await again.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await again.readResponse().header("x-upstream") == "second")
                await again.close()
            }
        }

        @Test func shutdownLetsInFlightRequestsFinish() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a", maxBodySize: nil))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            var withListener = configuration
            withListener.listeners = [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)]
            let engine = HTTPEngine(group: TestSupport.group, logger: TestSupport.logger)
            try await engine.apply(withListener)
            let port = try #require(engine.boundListeners.values.first?.port)
            let client = try await TestSupport.connect(port)
            try await client.send("POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
            try await Task.sleep(nanoseconds: 100_000_000)
            async let stopped: Void = engine.shutdown(gracePeriod: .seconds(5))
            try await Task.sleep(nanoseconds: 100_000_000)
            try await client.send("cd")
            let response = try await client.readResponse()
            #expect(response.body == "received 4")
            #expect(response.header("connection") == "close")
            #expect(try await client.waitForClose())
            await stopped
            #expect(engine.openConnections == 0)
            await #expect(throws: (any Error).self) { _ = try await TestSupport.connect(port) }
        }

        @Test func tlsToUpstreamsWithAndWithoutVerification() async throws {
            let serverTLS = try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: [
                        .certificate(.init(bytes: Array(TestCertificates.defaultCertificate.utf8), format: .pem))
                    ],
                    privateKey: .privateKey(.init(bytes: Array(TestCertificates.defaultKey.utf8), format: .pem))
                )
            )
            let upstream = try await TestUpstream.start(name: "secure", group: TestSupport.group, tls: serverTLS)
            defer { Task { await upstream.stop() } }
            let endpoints = [TestSupport.endpoint(upstream)]
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (nil, "/unverified", HTTPRoute(service: "default/a", pool: "unverified")),
                    (nil, "/verified", HTTPRoute(service: "default/a", pool: "verified")),
                    (nil, "/wrong-ca", HTTPRoute(service: "default/a", pool: "wrong-ca")),
                ]),
                pools: [
                    "unverified": UpstreamPool(endpoints: endpoints, tls: UpstreamTLS()),
                    "verified": UpstreamPool(
                        endpoints: endpoints,
                        tls: UpstreamTLS(
                            trustRootsPEM: TestCertificates.defaultCertificate,
                            serverName: "default.local"
                        )
                    ),
                    "wrong-ca": UpstreamPool(
                        endpoints: endpoints,
                        tls: UpstreamTLS(trustRootsPEM: TestCertificates.exactCertificate, serverName: "default.local")
                    ),
                ]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /unverified HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream secure GET /unverified\n"))
                try await client.send("GET /verified HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream secure GET /verified\n"))
                try await client.send("GET /wrong-ca HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().status == 502)
                await client.close()
            }
        }
    }
}
