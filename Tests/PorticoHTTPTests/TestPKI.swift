import Crypto
import Foundation
import NIOSSL
import PorticoHTTP
import SwiftASN1
import X509

/// Certificates made in the test process (P-256), for client certificate chains.
struct TestPKI {
    let certificate: Certificate
    let key: P256.Signing.PrivateKey

    var pem: String { (try? self.certificate.serializeAsPEM().pemString) ?? "" }
    var keyPEM: String { self.key.pemRepresentation }

    /// The certificate as NIOSSL holds it.
    var nio: NIOSSLCertificate {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(self.certificate)
            return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
        }
    }

    /// A CA (`isCA`) or an end-entity certificate named `name`, signed by `issuer` (self-signed
    /// when nil). `usages` adds an extended key usage extension (critical when `criticalUsage`).
    init(
        _ name: String,
        issuer: TestPKI? = nil,
        isCA: Bool = false,
        usages: [ExtendedKeyUsage.Usage]? = [.clientAuth],
        criticalUsage: Bool = false,
        notBefore: Date = Date().addingTimeInterval(-3600),
        notAfter: Date = Date().addingTimeInterval(30 * 86400),
        signedBy forgedKey: P256.Signing.PrivateKey? = nil
    ) throws {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        let publicKey = Certificate.PublicKey(key.publicKey)
        var extensions = try Certificate.Extensions {
            Critical(isCA ? BasicConstraints.isCertificateAuthority(maxPathLength: nil) : .notCertificateAuthority)
            Critical(isCA ? KeyUsage(keyCertSign: true, cRLSign: true) : KeyUsage(digitalSignature: true))
            SubjectKeyIdentifier(hash: publicKey)
        }
        if let usages {
            try extensions.append(Certificate.Extension(try ExtendedKeyUsage(usages), critical: criticalUsage))
        }
        let signer = forgedKey ?? issuer?.key ?? key
        self.certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: issuer?.certificate.subject ?? subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(signer)
        )
        self.key = key
    }

    /// This certificate followed by `intermediates`, as a client presents them, with its key.
    func presenting(_ intermediates: [TestPKI] = []) -> (chain: String, key: String) {
        (([self] + intermediates).map(\.pem).joined(separator: "\n"), self.keyPEM)
    }
}
