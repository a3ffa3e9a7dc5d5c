import Crypto
public import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import SwiftASN1
import X509

/// The certificate an HTTPS front serves when it has no certificate at all (no Ingress TLS
/// section, no `portico.dev/default-certificate`), as ingress-nginx serves its "Fake
/// Certificate": an ECDSA P-256 key and a self-signed certificate made by Portico.
///
/// Clients will not trust it; it only lets the front answer TLS at all. The runtime keeps it in
/// the state directory when there is one (``HTTPEngineConfiguration/defaultCertificate``), so a
/// client that pinned it sees the same certificate after a reload or a restart. Without one,
/// the engine uses ``processWide()``: made once, then the same for every engine and reload of
/// the process.
public enum SelfSignedCertificate {
    /// The subject's common name.
    public static let commonName = "Portico Default Certificate"
    /// The certificate's one DNS name (`.invalid` is reserved: it names no real host).
    public static let dnsName = "portico-default-certificate.invalid"
    /// Validity from the moment it is made. 825 days is the longest validity that Apple
    /// platforms accept for a TLS server certificate, even a manually trusted one.
    public static let validityDays = 825
    /// A certificate with less validity left than this is replaced when it is next needed.
    public static let renewalDays = 30

    /// Makes a new key and certificate: subject and issuer "Portico Default Certificate",
    /// a random 16-byte serial number, valid from one hour ago (clock skew) for
    /// ``validityDays``, not a CA, usable for TLS server authentication.
    public static func generate(now: Date = Date()) throws -> TLSCertificate {
        let key = P256.Signing.PrivateKey()
        let certificateKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName {
            CommonName(Self.commonName)
            OrganizationName("Portico")
        }
        var generator = SystemRandomNumberGenerator()
        var serial = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        serial[0] &= 0x7F  // positive
        serial[0] |= 0x40  // and 16 bytes long, never shortened by a leading zero
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: serial),
            publicKey: certificateKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(Double(Self.validityDays) * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.dnsName(Self.dnsName)])
                SubjectKeyIdentifier(hash: certificateKey.publicKey)
            },
            issuerPrivateKey: certificateKey
        )
        return TLSCertificate(
            serverNames: [],
            certificateChainPEM: try certificate.serializeAsPEM().pemString + "\n",
            privateKeyPEM: key.pemRepresentation + "\n"
        )
    }

    /// Why `certificate` should not be served (again) as the self-signed default: unreadable,
    /// a key that does not belong to it, or less than ``renewalDays`` of validity left. Nil
    /// when it is fine.
    public static func problem(with certificate: TLSCertificate, now: Date = Date()) -> String? {
        let parsed: Certificate
        do {
            parsed = try Certificate(pemEncoded: certificate.certificateChainPEM)
        } catch {
            return "the certificate is not readable PEM (\(error))"
        }
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: certificate.privateKeyPEM)
        } catch {
            return "the private key is not readable PEM (\(error))"
        }
        if key.publicKey != parsed.publicKey {
            return "the private key does not belong to the certificate"
        }
        if parsed.notValidAfter < now.addingTimeInterval(Double(Self.renewalDays) * 86400) {
            return "the certificate expires on \(parsed.notValidAfter) (less than \(Self.renewalDays) days left)"
        }
        if parsed.notValidBefore > now.addingTimeInterval(3600) {
            return "the certificate is not valid before \(parsed.notValidBefore)"
        }
        return nil
    }

    private static let current = NIOLockedValueBox<TLSCertificate?>(nil)

    /// This process's self-signed certificate: made on first use, then the same one until it
    /// comes within ``renewalDays`` of its end.
    public static func processWide(now: Date = Date()) throws -> TLSCertificate {
        try Self.current.withLockedValue { current in
            if let existing = current, Self.problem(with: existing, now: now) == nil { return existing }
            let made = try Self.generate(now: now)
            current = made
            return made
        }
    }
}
