import Foundation
import NIOCore
import NIOSSL
import PorticoHTTP
import Testing
import X509

extension PorticoHTTPEngineTests {
    /// `auth-tls-verify-depth` and the other client chain checks, over real sockets: a root CA
    /// in ca.crt, an intermediate, and client certificates presented with NIOSSL.
    @Suite("Client certificate chains (auth-tls-verify-depth)")
    struct ClientChainTests {
        let root: TestPKI
        let intermediate: TestPKI

        init() throws {
            self.root = try TestPKI("root CA", isCA: true, usages: nil)
            self.intermediate = try TestPKI("intermediate CA", issuer: self.root, isCA: true, usages: nil)
        }

        private func configuration(
            _ upstream: TestUpstream,
            mode: ClientCertificateAuthority.Mode = .required,
            depth: Int
        ) -> HTTPEngineConfiguration {
            let id = "\(mode.rawValue):default/ca"
            return HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)],
                certificates: [
                    TLSCertificate(
                        serverNames: ["a.example.com"],
                        certificateChainPEM: TestCertificates.exactCertificate,
                        privateKeyPEM: TestCertificates.exactKey
                    )
                ],
                routes: TestSupport.routes([
                    ("a.example.com", "/", HTTPRoute(service: "default/a", pool: "a", clientCertificate: id))
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])],
                clientCertificateAuthorities: [
                    ClientCertificateAuthority(
                        id: id,
                        serverNames: ["a.example.com"],
                        mode: mode,
                        trustRootsPEM: mode == .optionalNoCA ? nil : self.root.pem,
                        verifyDepth: depth
                    )
                ]
            )
        }

        /// A GET for a.example.com presenting `certificate` (a chain and its key), or none.
        private func get(_ port: Int?, _ certificate: (chain: String, key: String)?) async throws -> TestResponse {
            try await ClientCertificateTests.get(port, serverName: "a.example.com", certificate: certificate)
        }

        /// Whether the request got through with a verified certificate (the handshake was refused otherwise).
        private func accepted(_ port: Int?, _ certificate: (chain: String, key: String)?) async -> Bool {
            guard let response = try? await self.get(port, certificate) else { return false }
            return response.status == 200 && response.body.contains("\nssl-client-verify: SUCCESS\n")
        }

        @Test func depthDecidesWhetherAnIntermediateMayBeUsed() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let leaf = try TestPKI("client", issuer: self.intermediate)
            let direct = try TestPKI("direct client", issuer: self.root)
            try await TestSupport.withEngine(self.configuration(upstream, depth: 1)) { engine, ports in
                #expect(await self.accepted(ports[.https], direct.presenting()))
                #expect(!(await self.accepted(ports[.https], leaf.presenting([self.intermediate]))))

                // A reload to depth 2 accepts the same chain on the same listener.
                try await engine.apply(self.configuration(upstream, depth: 2))
                #expect(await self.accepted(ports[.https], leaf.presenting([self.intermediate])))
                #expect(await self.accepted(ports[.https], direct.presenting()))
                // The intermediate must be presented: ca.crt holds only the root.
                #expect(!(await self.accepted(ports[.https], leaf.presenting())))
            }
        }

        @Test func expiredAndServerOnlyCertificatesAreRefused() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let good = try TestPKI("client", issuer: self.intermediate)
            let expired = try TestPKI(
                "expired client",
                issuer: self.intermediate,
                notBefore: Date().addingTimeInterval(-86400 * 10),
                notAfter: Date().addingTimeInterval(-60)
            )
            let serverOnly = try TestPKI("server-only client", issuer: self.intermediate, usages: [.serverAuth])
            let otherRoot = try TestPKI("other CA", isCA: true, usages: nil)
            let stranger = try TestPKI("stranger", issuer: otherRoot)
            try await TestSupport.withEngine(self.configuration(upstream, depth: 2)) { _, ports in
                #expect(await self.accepted(ports[.https], good.presenting([self.intermediate])))
                #expect(!(await self.accepted(ports[.https], expired.presenting([self.intermediate]))))
                #expect(!(await self.accepted(ports[.https], serverOnly.presenting([self.intermediate]))))
                #expect(!(await self.accepted(ports[.https], stranger.presenting([otherRoot]))))
                #expect(!(await self.accepted(ports[.https], nil)))
            }
        }

        @Test func optionalModesKeepTheirMeaning() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let leaf = try TestPKI("client", issuer: self.intermediate)
            try await TestSupport.withEngine(self.configuration(upstream, mode: .optional, depth: 1)) { engine, ports in
                // optional: no certificate passes as NONE; a chain too long is refused.
                let without = try await self.get(ports[.https], nil)
                #expect(without.status == 200)
                #expect(without.body.contains("\nssl-client-verify: NONE\n"))
                #expect(!(await self.accepted(ports[.https], leaf.presenting([self.intermediate]))))

                // optional_no_ca: any certificate is accepted, even one nobody signed.
                try await engine.apply(self.configuration(upstream, mode: .optionalNoCA, depth: 1))
                let nobody = try TestPKI("self-signed client")
                #expect(await self.accepted(ports[.https], nobody.presenting()))
                #expect(await self.accepted(ports[.https], leaf.presenting([self.intermediate])))
            }
        }
    }
}
