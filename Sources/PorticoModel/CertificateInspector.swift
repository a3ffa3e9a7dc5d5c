import NIOSSL

/// What Portico checks in a `kubernetes.io/tls` Secret before serving it.
public struct CertificateSummary: Hashable, Sendable {
    /// DNS names from the subject alternative names (lowercased).
    public var dnsNames: [String]
    public var notValidBefore: Int
    public var notValidAfter: Int
}

/// Parses PEM certificates and keys with NIOSSL (BoringSSL) and checks that they belong together.
public enum CertificateInspector {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case noCertificate
        case unreadableCertificate(String)
        case unreadableKey(String)
        case keyMismatch

        public var description: String {
            switch self {
            case .noCertificate: return "contains no PEM certificate (-----BEGIN CERTIFICATE-----)"
            case .unreadableCertificate(let reason): return "is not a readable PEM certificate (\(reason))"
            case .unreadableKey(let reason): return "is not a readable PEM private key (\(reason))"
            case .keyMismatch: return "tls.key is not the private key of the certificate in tls.crt"
            }
        }
    }

    /// Reads the leaf certificate of a PEM chain.
    public static func summary(ofChain pem: [UInt8]) -> Result<CertificateSummary, Problem> {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(pem)
        } catch {
            return .failure(.unreadableCertificate("\(error)"))
        }
        guard let leaf = chain.first else { return .failure(.noCertificate) }
        var names: [String] = []
        for name in leaf._subjectAlternativeNames() where name.nameType == .dnsName {
            names.append(String(decoding: name.contents, as: UTF8.self).lowercased())
        }
        return .success(
            CertificateSummary(
                dnsNames: names,
                notValidBefore: Int(leaf.notValidBefore),
                notValidAfter: Int(leaf.notValidAfter)
            )
        )
    }

    /// Checks that a certificate chain and a private key form a usable server identity.
    public static func checkPair(chain pem: [UInt8], key: [UInt8]) -> Problem? {
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(pem)
        } catch {
            return .unreadableCertificate("\(error)")
        }
        guard !chain.isEmpty else { return .noCertificate }
        do {
            privateKey = try NIOSSLPrivateKey(bytes: key, format: .pem)
        } catch {
            return .unreadableKey("\(error)")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(privateKey)
        )
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            return .keyMismatch
        }
        return nil
    }

    /// Whether a certificate DNS name (possibly `*.example.com`) covers `host`.
    public static func name(_ pattern: String, covers host: String) -> Bool {
        if pattern == host { return true }
        guard pattern.hasPrefix("*.") else { return false }
        let suffix = pattern.dropFirst(1)
        if host.hasPrefix("*.") { return host.dropFirst(1) == suffix }
        guard let dot = host.firstIndex(of: ".") else { return false }
        return host[dot...] == suffix && dot != host.startIndex
    }
}
