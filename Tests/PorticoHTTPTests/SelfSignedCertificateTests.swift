import Foundation
import NIOCore
import NIOSSL
import PorticoHTTP
import SwiftASN1
import Testing
import X509

extension PorticoHTTPEngineTests {
    /// An HTTPS listener without any certificate serves a self-signed one made by Portico.
    @Suite("Self-signed default certificate")
    struct SelfSignedDefaultTests {
        /// The leaf certificate a TLS handshake with `serverName` is answered with.
        private func servedCertificate(
            _ port: Int?,
            serverName: String? = "anything.example.com"
        ) async throws
            -> Certificate
        {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            let client = try await RawClient.connect(
                port: port!,
                group: TestSupport.group,
                tls: try NIOSSLContext(configuration: tls),
                serverName: serverName
            )
            // The route answers 404: enough to know that the handshake is done.
            try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await client.readResponse()
            let channel = client.channel.channel
            let leaf = try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
            }.get()
            await client.close()
            return try Certificate(derEncoded: try #require(leaf).toDERBytes())
        }

        @Test func aListenerWithoutCertificatesServesTheSameSelfSignedOneAcrossReloads() async throws {
            let configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)]
            )
            try await TestSupport.withEngine(configuration) { engine, ports in
                let first = try await self.servedCertificate(ports[.https])
                #expect(first.subject.description.contains("CN=Portico Default Certificate"), "\(first.subject)")
                #expect(first.issuer == first.subject)
                let names = try #require(try first.extensions.subjectAlternativeNames)
                #expect(names.contains(.dnsName(SelfSignedCertificate.dnsName)))
                #expect(try await self.servedCertificate(ports[.https], serverName: nil) == first)
                try await engine.apply(configuration)
                #expect(try await self.servedCertificate(ports[.https]) == first)
            }
        }

        @Test func certificatesForSomeNamesKeepTheFirstAsTheFallback() async throws {
            let configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)],
                certificates: [
                    TLSCertificate(
                        serverNames: ["a.example.com"],
                        certificateChainPEM: TestCertificates.exactCertificate,
                        privateKeyPEM: TestCertificates.exactKey
                    )
                ]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let served = try await self.servedCertificate(ports[.https], serverName: "other.example.org")
                #expect(served == (try Certificate(pemEncoded: TestCertificates.exactCertificate)))
            }
        }

        @Test func aGivenDefaultCertificateIsServedInstead() async throws {
            let given = try SelfSignedCertificate.generate()
            let configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)],
                defaultCertificate: given
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let served = try await self.servedCertificate(ports[.https])
                #expect(served == (try Certificate(pemEncoded: given.certificateChainPEM)))
                #expect(
                    served != (try Certificate(pemEncoded: SelfSignedCertificate.processWide().certificateChainPEM))
                )
            }
        }
    }
}

/// The self-signed certificate itself.
@Suite struct SelfSignedCertificateTests {
    @Test func isAnECDSAP256ServerCertificateWithARandomSerial() throws {
        let now = Date()
        let made = try SelfSignedCertificate.generate(now: now)
        let certificate = try Certificate(pemEncoded: made.certificateChainPEM)
        #expect(certificate.subject.description.contains("CN=Portico Default Certificate"))
        #expect(certificate.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(certificate.publicKey == (try Certificate.PrivateKey(pemEncoded: made.privateKeyPEM)).publicKey)
        #expect(abs(certificate.notValidAfter.timeIntervalSince(now) - 825 * 86400) < 2)
        #expect(certificate.notValidBefore < now)
        #expect(try certificate.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try certificate.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
        // NIOSSL reads what it will serve.
        _ = try NIOSSLCertificate(bytes: Array(made.certificateChainPEM.utf8), format: .pem)
        _ = try NIOSSLPrivateKey(bytes: Array(made.privateKeyPEM.utf8), format: .pem)
        let other = try Certificate(pemEncoded: try SelfSignedCertificate.generate(now: now).certificateChainPEM)
        #expect(other.serialNumber != certificate.serialNumber)
        #expect(certificate.serialNumber.bytes.count == 16)
    }

    @Test func problemsAreFoundBeforeServingAStoredOne() throws {
        let now = Date()
        let made = try SelfSignedCertificate.generate(now: now)
        #expect(SelfSignedCertificate.problem(with: made, now: now) == nil)
        // Nearly at its end: renewed.
        let late = now.addingTimeInterval(Double(SelfSignedCertificate.validityDays - 10) * 86400)
        #expect(SelfSignedCertificate.problem(with: made, now: late)?.contains("expires") == true)
        // Another certificate's key, or garbage.
        let other = try SelfSignedCertificate.generate(now: now)
        var mixed = made
        mixed.privateKeyPEM = other.privateKeyPEM
        #expect(SelfSignedCertificate.problem(with: mixed, now: now)?.contains("does not belong") == true)
        var garbage = made
        garbage.certificateChainPEM = "not a certificate"
        #expect(SelfSignedCertificate.problem(with: garbage, now: now)?.contains("not readable") == true)
    }

    @Test func processWideIsMadeOnce() throws {
        let first = try SelfSignedCertificate.processWide()
        #expect(try SelfSignedCertificate.processWide().certificateChainPEM == first.certificateChainPEM)
    }
}
