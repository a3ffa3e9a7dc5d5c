import Foundation
import Testing
import X509

@testable import PorticoHTTP

/// The decisions of Portico's own client chain verification (`auth-tls-verify-depth`, validity,
/// CA flags, extended key usage), on certificates made in the test.
@Suite struct ClientCertificateVerifierTests {
    let root: TestPKI
    let intermediate: TestPKI

    init() throws {
        self.root = try TestPKI("root CA", isCA: true, usages: nil)
        self.intermediate = try TestPKI("intermediate CA", issuer: self.root, isCA: true, usages: nil)
    }

    private func decide(
        _ presented: [TestPKI],
        anchors: [TestPKI]? = nil,
        depth: Int = 1
    ) async throws
        -> ClientCertificateVerifier.Decision
    {
        let verifier = try ClientCertificateVerifier(
            anchors: (anchors ?? [self.root]).map(\.certificate),
            depth: depth
        )
        return await verifier.verify(presented.map(\.certificate))
    }

    private func refusal(_ decision: ClientCertificateVerifier.Decision) -> String? {
        if case .refused(let reason) = decision { return reason }
        return nil
    }

    @Test func leafSignedByTheCAIsAcceptedAtDepthOne() async throws {
        let leaf = try TestPKI("client", issuer: self.root)
        #expect(try await self.decide([leaf]) == .accepted([leaf.certificate, self.root.certificate]))
    }

    @Test func anIntermediateNeedsDepthTwo() async throws {
        let leaf = try TestPKI("client", issuer: self.intermediate)
        let refused = try await self.decide([leaf, self.intermediate], depth: 1)
        #expect(self.refusal(refused)?.contains("more than auth-tls-verify-depth 1") == true, "\(refused)")
        #expect(
            try await self.decide([leaf, self.intermediate], depth: 2)
                == .accepted([leaf.certificate, self.intermediate.certificate, self.root.certificate])
        )
        // Without the intermediate there is no chain at all, whatever the depth.
        #expect(self.refusal(try await self.decide([leaf], depth: 16)) != nil)
    }

    @Test func depthCountsEveryCACertificateUpToTheAnchor() async throws {
        let second = try TestPKI("second intermediate CA", issuer: self.intermediate, isCA: true, usages: nil)
        let leaf = try TestPKI("client", issuer: second)
        #expect(self.refusal(try await self.decide([leaf, second, self.intermediate], depth: 2)) != nil)
        if case .accepted(let chain) = try await self.decide([leaf, second, self.intermediate], depth: 3) {
            #expect(chain.count == 4)
        } else {
            Issue.record("a chain of three CA certificates is refused at depth 3")
        }
        // An intermediate placed in ca.crt is an anchor: the chain ends there.
        #expect(
            try await self.decide([leaf, second], anchors: [self.intermediate], depth: 2)
                == .accepted([leaf.certificate, second.certificate, self.intermediate.certificate])
        )
    }

    @Test func certificatesOutsideTheirValidityAreRefused() async throws {
        let expired = try TestPKI(
            "client",
            issuer: self.root,
            notBefore: Date().addingTimeInterval(-86400 * 10),
            notAfter: Date().addingTimeInterval(-60)
        )
        #expect(self.refusal(try await self.decide([expired])) != nil)
        let notYet = try TestPKI("client", issuer: self.root, notBefore: Date().addingTimeInterval(3600))
        #expect(self.refusal(try await self.decide([notYet])) != nil)
        let expiredIntermediate = try TestPKI(
            "intermediate CA",
            issuer: self.root,
            isCA: true,
            usages: nil,
            notBefore: Date().addingTimeInterval(-86400 * 10),
            notAfter: Date().addingTimeInterval(-60)
        )
        let leaf = try TestPKI("client", issuer: expiredIntermediate)
        #expect(self.refusal(try await self.decide([leaf, expiredIntermediate], depth: 2)) != nil)
    }

    @Test func extendedKeyUsageMustAllowClientAuthentication() async throws {
        let serverOnly = try TestPKI("client", issuer: self.root, usages: [.serverAuth])
        let refused = try await self.decide([serverOnly])
        #expect(self.refusal(refused)?.contains("does not allow client authentication") == true, "\(refused)")
        for usages in [nil, [.clientAuth], [.serverAuth, .clientAuth], [.any]] as [[ExtendedKeyUsage.Usage]?] {
            let leaf = try TestPKI("client", issuer: self.root, usages: usages)
            #expect(
                try await self.decide([leaf]) == .accepted([leaf.certificate, self.root.certificate]),
                "\(usages as Any)"
            )
        }
        // A critical extended key usage is understood, not refused as unknown.
        let critical = try TestPKI("client", issuer: self.root, usages: [.clientAuth], criticalUsage: true)
        #expect(try await self.decide([critical]) == .accepted([critical.certificate, self.root.certificate]))
        // An intermediate restricted to server authentication cannot issue client certificates.
        let serverCA = try TestPKI("server CA", issuer: self.root, isCA: true, usages: [.serverAuth])
        let leaf = try TestPKI("client", issuer: serverCA)
        #expect(self.refusal(try await self.decide([leaf, serverCA], depth: 2)) != nil)
    }

    @Test func issuersMustBeCAs() async throws {
        let notCA = try TestPKI("not a CA", issuer: self.root, isCA: false, usages: nil)
        let leaf = try TestPKI("client", issuer: notCA)
        #expect(self.refusal(try await self.decide([leaf, notCA], depth: 2)) != nil)
    }

    @Test func otherAuthoritiesAndForgedSignaturesAreRefused() async throws {
        let otherRoot = try TestPKI("other CA", isCA: true, usages: nil)
        let stranger = try TestPKI("client", issuer: otherRoot)
        #expect(self.refusal(try await self.decide([stranger, otherRoot], depth: 16)) != nil)
        // Names the root as its issuer, but signed by another key.
        let forged = try TestPKI("client", issuer: self.root, signedBy: otherRoot.key)
        #expect(self.refusal(try await self.decide([forged])) != nil)
        #expect(self.refusal(try await self.decide([])) != nil)
    }

    @Test func caBundleWithoutCertificatesOrBadDepthIsAnError() throws {
        #expect(throws: (any Error).self) { _ = try ClientCertificateVerifier(trustRootsPEM: "", depth: 1) }
        #expect(throws: (any Error).self) {
            _ = try ClientCertificateVerifier(trustRootsPEM: self.root.pem, depth: 0)
        }
        let verifier = try ClientCertificateVerifier(
            trustRootsPEM: self.root.pem + "\n" + self.intermediate.pem,
            depth: 2
        )
        #expect(verifier.anchors == [self.root.certificate, self.intermediate.certificate])
    }
}
