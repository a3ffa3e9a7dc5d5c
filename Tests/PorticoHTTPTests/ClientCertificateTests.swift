import NIOCore
import NIOSSL
import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    /// ingress-nginx `auth-tls-verify-client` / `auth-tls-secret`: the TLS context is chosen by
    /// SNI, and a route bound to an authority refuses connections that authority did not verify.
    @Suite("Client certificates (auth-tls)")
    struct ClientCertificateTests {
        private static let required = "on:default/ca1"
        private static let optional = "optional:default/ca1"

        private func configuration(_ upstream: TestUpstream) -> HTTPEngineConfiguration {
            let pool = ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            return HTTPEngineConfiguration(
                listeners: [
                    HTTPListener(address: "127.0.0.1", port: 0, kind: .http),
                    HTTPListener(address: "127.0.0.1", port: 0, kind: .https),
                ],
                certificates: [
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
                ],
                defaultCertificate: TLSCertificate(
                    serverNames: [],
                    certificateChainPEM: TestCertificates.defaultCertificate,
                    privateKeyPEM: TestCertificates.defaultKey
                ),
                routes: TestSupport.routes([
                    (
                        "a.example.com", "/",
                        HTTPRoute(service: "default/a", pool: "a", clientCertificate: Self.required)
                    ),
                    (
                        "opt.wild.example.com", "/",
                        HTTPRoute(service: "default/a", pool: "a", clientCertificate: Self.optional)
                    ),
                    ("open.wild.example.com", "/", HTTPRoute(service: "default/a", pool: "a")),
                ]),
                pools: pool,
                clientCertificateAuthorities: [
                    ClientCertificateAuthority(
                        id: Self.required,
                        serverNames: ["a.example.com"],
                        mode: .required,
                        trustRootsPEM: ClientCertificates.ca1
                    ),
                    ClientCertificateAuthority(
                        id: Self.optional,
                        serverNames: ["opt.wild.example.com"],
                        mode: .optional,
                        trustRootsPEM: ClientCertificates.ca1
                    ),
                ]
            )
        }

        /// A GET over TLS with `serverName` as SNI and `host` as Host, optionally presenting a
        /// certificate (a PEM chain and its key). Also used by ``ClientChainTests``.
        static func get(
            _ port: Int?,
            serverName: String,
            host: String? = nil,
            certificate: (chain: String, key: String)? = nil,
            extraHeaders: String = ""
        ) async throws -> TestResponse {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            tls.applicationProtocols = ["http/1.1"]
            if let certificate {
                let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.chain.utf8))
                tls.certificateChain = chain.map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.key.utf8), format: .pem))
            }
            let client = try await RawClient.connect(
                port: port!,
                group: TestSupport.group,
                tls: try NIOSSLContext(configuration: tls),
                serverName: serverName
            )
            do {
                try await client.send("GET /who HTTP/1.1\r\nHost: \(host ?? serverName)\r\n\(extraHeaders)\r\n")
                let response = try await client.readResponse()
                await client.close()
                return response
            } catch {
                await client.close()
                throw error
            }
        }

        private static let client1 = (ClientCertificates.client1, ClientCertificates.client1Key)
        private static let client2 = (ClientCertificates.client2, ClientCertificates.client2Key)

        @Test func requiredCertificateIsVerifiedAgainstTheAuthority() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let accepted = try await Self.get(ports[.https], serverName: "a.example.com", certificate: Self.client1)
                #expect(accepted.status == 200)
                #expect(accepted.body.contains("\nssl-client-verify: SUCCESS\n"))

                // No certificate, or one from another CA: the handshake fails, nothing reaches the upstream.
                await #expect(throws: (any Error).self) {
                    _ = try await Self.get(ports[.https], serverName: "a.example.com")
                }
                await #expect(throws: (any Error).self) {
                    _ = try await Self.get(ports[.https], serverName: "a.example.com", certificate: Self.client2)
                }
            }
        }

        @Test func anotherServerNameCannotReachAProtectedHost() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                // SNI of an unprotected host, Host of the protected one: no certificate was asked for.
                let misdirected = try await Self.get(
                    ports[.https],
                    serverName: "open.wild.example.com",
                    host: "a.example.com"
                )
                #expect(misdirected.status == 421)
                #expect(misdirected.body.contains("needs a client certificate"))
                // Even with a certificate of the right CA presented on the optional host's context.
                let crossed = try await Self.get(
                    ports[.https],
                    serverName: "opt.wild.example.com",
                    host: "a.example.com",
                    certificate: Self.client1
                )
                #expect(crossed.status == 421)
                // Plain HTTP to the protected host.
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                #expect(try await client.readResponse().status == 403)
                await client.close()
                // Unprotected hosts on the same listener are unaffected.
                let open = try await Self.get(ports[.https], serverName: "open.wild.example.com")
                #expect(open.status == 200)
                #expect(!open.body.contains("ssl-client-verify"))
            }
        }

        @Test func optionalCertificateIsReportedToTheUpstream() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let with = try await Self.get(
                    ports[.https],
                    serverName: "opt.wild.example.com",
                    certificate: Self.client1
                )
                #expect(with.status == 200)
                #expect(with.body.contains("\nssl-client-verify: SUCCESS\n"))
                // Without a certificate; a client's own ssl-client-verify header is replaced.
                let without = try await Self.get(
                    ports[.https],
                    serverName: "opt.wild.example.com",
                    extraHeaders: "ssl-client-verify: SUCCESS\r\n"
                )
                #expect(without.status == 200)
                #expect(without.body.contains("\nssl-client-verify: NONE\n"))
                #expect(!without.body.contains("ssl-client-verify: SUCCESS"))
                // A certificate of another CA is still refused when presented.
                await #expect(throws: (any Error).self) {
                    _ = try await Self.get(ports[.https], serverName: "opt.wild.example.com", certificate: Self.client2)
                }
            }
        }
    }
}
