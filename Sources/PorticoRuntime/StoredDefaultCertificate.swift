import Foundation
import Logging
import PorticoHTTP
import PorticoPlan

/// The self-signed default certificate kept in the state directory, so that the HTTPS fronts
/// without any certificate serve the same one across reloads and restarts (a client that
/// pinned it is not surprised). The key is written with mode 0600.
enum StoredDefaultCertificate {
    static let certificateFile = "default-certificate.crt"
    static let keyFile = "default-certificate.key"

    /// The stored certificate when it can still be served; otherwise a new one, stored.
    static func load(from directory: StateDirectory, logger: Logger, now: Date = Date()) throws -> TLSCertificate {
        if let chain = directory.readFile(Self.certificateFile), let key = directory.readFile(Self.keyFile) {
            let stored = TLSCertificate(
                serverNames: [],
                certificateChainPEM: String(decoding: chain, as: UTF8.self),
                privateKeyPEM: String(decoding: key, as: UTF8.self)
            )
            guard let problem = SelfSignedCertificate.problem(with: stored, now: now) else { return stored }
            logger.warning(
                "replacing the self-signed default certificate of the state directory",
                metadata: ["reason": "\(problem)", "path": "\(directory.filePath(Self.certificateFile))"]
            )
        }
        let made = try SelfSignedCertificate.generate(now: now)
        // The key first: a crash between the two writes leaves a pair that does not match, and
        // that is replaced on the next start.
        try directory.writeFile(Self.keyFile, Array(made.privateKeyPEM.utf8), mode: 0o600)
        try directory.writeFile(Self.certificateFile, Array(made.certificateChainPEM.utf8), mode: 0o644)
        logger.notice(
            "made a self-signed default certificate for HTTPS fronts without a certificate",
            metadata: ["path": "\(directory.filePath(Self.certificateFile))"]
        )
        return made
    }
}
