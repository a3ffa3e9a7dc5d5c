import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// Verifies the certificate chain a TLS client presents against the CA certificates of an
/// authority (`ca.crt` of ingress-nginx's `auth-tls-secret`), with the checks OpenSSL makes
/// for nginx's `ssl_verify_client` and `ssl_verify_depth`:
///
/// - every certificate is signed by the next, up to a certificate of `ca.crt` (a certificate
///   of `ca.crt` is trusted as it is: the chain ends at the first one reached);
/// - the chain holds the leaf and at most `depth` CA certificates, the one from `ca.crt`
///   included: depth 1 means a leaf signed directly by a certificate of `ca.crt`;
/// - every certificate is within its validity period now;
/// - every issuer is a CA (basic constraints, path length) and name constraints hold;
/// - a certificate below the trust anchor that has an extended key usage extension allows
///   `clientAuth` (or `anyExtendedKeyUsage`);
/// - no certificate has a critical extension that is not understood.
///
/// The CA certificates are parsed once, when the engine's configuration is applied. A
/// handshake's verification runs in a task, off the event loop; it completes NIOSSL's promise.
struct ClientCertificateVerifier: Sendable {
    /// The CA certificates, parsed.
    let anchors: [Certificate]
    /// The same certificates as NIOSSL holds them, to report the validated chain.
    private let nioAnchors: [Certificate: NIOSSLCertificate]
    private let store: X509.CertificateStore
    /// Most CA certificates above the leaf (ingress-nginx `auth-tls-verify-depth`).
    let depth: Int

    /// What was decided about one presented chain.
    enum Decision: Equatable, Sendable {
        /// Trusted: the chain from the leaf to the trust anchor.
        case accepted([Certificate])
        /// Refused, and why (for the log).
        case refused(String)
    }

    init(trustRootsPEM: String, depth: Int) throws {
        let nio = try NIOSSLCertificate.fromPEMBytes(Array(trustRootsPEM.utf8))
        var anchors: [Certificate] = []
        var nioAnchors: [Certificate: NIOSSLCertificate] = [:]
        for certificate in nio {
            let parsed = try Certificate(derEncoded: try certificate.toDERBytes())
            anchors.append(parsed)
            nioAnchors[parsed] = certificate
        }
        try self.init(anchors: anchors, nioAnchors: nioAnchors, depth: depth)
    }

    /// For tests: anchors made in-process.
    init(anchors: [Certificate], depth: Int) throws {
        var nioAnchors: [Certificate: NIOSSLCertificate] = [:]
        for anchor in anchors {
            var serializer = DER.Serializer()
            try serializer.serialize(anchor)
            nioAnchors[anchor] = try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
        }
        try self.init(anchors: anchors, nioAnchors: nioAnchors, depth: depth)
    }

    private init(anchors: [Certificate], nioAnchors: [Certificate: NIOSSLCertificate], depth: Int) throws {
        guard !anchors.isEmpty else { throw ClientCertificateError.noCACertificate }
        guard depth >= 1 else { throw ClientCertificateError.invalidDepth(depth) }
        self.anchors = anchors
        self.nioAnchors = nioAnchors
        self.store = X509.CertificateStore(anchors)
        self.depth = depth
    }

    /// Decides on a chain as presented: the leaf first, then the certificates the client
    /// sent along (candidate intermediates, in any order).
    func verify(_ presented: [Certificate]) async -> Decision {
        guard let leaf = presented.first else { return .refused("the client presented no certificate") }
        var verifier = Verifier(rootCertificates: self.store) {
            RFC5280Policy()
            ClientAuthenticationPolicy(depth: self.depth)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: X509.CertificateStore(presented.dropFirst()))
        switch result {
        case .validCertificate(let chain):
            return .accepted(Array(chain))
        case .couldNotValidate(let failures):
            if let failure = failures.first {
                return .refused("\(failure.policyFailureReason)")
            }
            return .refused(
                "no chain from \(leaf.subject) (issuer \(leaf.issuer)) to a certificate of ca.crt: no such issuer, a signature that does not verify, or a critical extension Portico does not understand"
            )
        }
    }

    /// NIOSSL's custom verification: parses the presented chain and decides in a task, then
    /// completes `promise` (on success with the validated chain, as NIOSSL holds it).
    func verify(
        _ presented: [NIOSSLCertificate],
        promise: EventLoopPromise<NIOSSLVerificationResultWithMetadata>,
        log: (@Sendable (String) -> Void)? = nil
    ) {
        let verifier = self
        Task {
            var parsed: [Certificate] = []
            var byCertificate = verifier.nioAnchors
            for certificate in presented {
                guard let bytes = try? certificate.toDERBytes(), let value = try? Certificate(derEncoded: bytes) else {
                    log?("the client's certificate chain is not readable DER")
                    promise.succeed(.failed)
                    return
                }
                parsed.append(value)
                byCertificate[value] = certificate
            }
            switch await verifier.verify(parsed) {
            case .accepted(let chain):
                let validated = chain.compactMap { byCertificate[$0] }
                promise.succeed(
                    .certificateVerified(
                        VerificationMetadata(
                            validated.count == chain.count ? NIOSSL.ValidatedCertificateChain(validated) : nil
                        )
                    )
                )
            case .refused(let reason):
                log?(reason)
                promise.succeed(.failed)
            }
        }
    }
}

/// The client-certificate rules RFC 5280's policy does not cover: the chain's length
/// (`auth-tls-verify-depth`) and the extended key usage of the certificates below the anchor.
struct ClientAuthenticationPolicy: VerifierPolicy {
    /// Most CA certificates above the leaf, the trust anchor included.
    let depth: Int

    /// This policy enforces extended key usage, so a critical one does not make a chain unusable.
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.extendedKeyUsage]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let certificates = Array(chain)
        let authorities = certificates.count - 1
        if authorities > self.depth {
            return .failsToMeetPolicy(
                reason:
                    "the chain needs \(authorities) CA certificates above the client's certificate, more than auth-tls-verify-depth \(self.depth) allows"
            )
        }
        // The anchor is trusted as configured; the leaf and the intermediates must be meant for
        // client authentication when they say what they are meant for.
        let checked = certificates.count == 1 ? certificates : Array(certificates.dropLast())
        for (index, certificate) in checked.enumerated() {
            let usage: ExtendedKeyUsage?
            do {
                usage = try certificate.extensions.extendedKeyUsage
            } catch {
                return .failsToMeetPolicy(
                    reason: "the extended key usage of \(certificate.subject) is not readable: \(error)"
                )
            }
            guard let usage else { continue }
            if !usage.contains(.clientAuth) && !usage.contains(.any) {
                let which = index == 0 ? "the client's certificate" : "the intermediate CA \(certificate.subject)"
                return .failsToMeetPolicy(
                    reason: "\(which) does not allow client authentication (extended key usage \(usage))"
                )
            }
        }
        return .meetsPolicy
    }
}

/// Problems with an authority's CA certificates.
enum ClientCertificateError: Error, CustomStringConvertible {
    case noCACertificate
    case invalidDepth(Int)

    var description: String {
        switch self {
        case .noCACertificate: return "ca.crt holds no certificate"
        case .invalidDepth(let depth): return "auth-tls-verify-depth \(depth) is not at least 1"
        }
    }
}
