import Foundation
import Logging
import PorticoHTTP
import PorticoPlan
import Testing

@testable import PorticoRuntime

/// The self-signed default certificate kept in the state directory.
@Suite struct StoredDefaultCertificateTests {
    private let logger = Logger(label: "portico.test")

    private func withDirectory(_ body: (StateDirectory) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("portico-state-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(StateDirectory(path: path))
    }

    @Test func isMadeOnceAndReadBackWithAPrivateKeyFile() throws {
        try self.withDirectory { directory in
            let first = try StoredDefaultCertificate.load(from: directory, logger: self.logger)
            let keyPath = directory.filePath(StoredDefaultCertificate.keyFile)
            let mode = try #require(
                try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
            )
            #expect(mode == 0o600)
            #expect(
                directory.readFile(StoredDefaultCertificate.certificateFile) == Array(first.certificateChainPEM.utf8)
            )
            let again = try StoredDefaultCertificate.load(from: directory, logger: self.logger)
            #expect(again.certificateChainPEM == first.certificateChainPEM)
            #expect(again.privateKeyPEM == first.privateKeyPEM)
        }
    }

    @Test func anUnusableStoredCertificateIsReplaced() throws {
        try self.withDirectory { directory in
            let first = try StoredDefaultCertificate.load(from: directory, logger: self.logger)
            // Near its end of validity: a new one.
            let late = Date().addingTimeInterval(Double(SelfSignedCertificate.validityDays - 1) * 86400)
            let renewed = try StoredDefaultCertificate.load(from: directory, logger: self.logger, now: late)
            #expect(renewed.certificateChainPEM != first.certificateChainPEM)
            // A key that is not the certificate's: a new pair, stored.
            try directory.writeFile(StoredDefaultCertificate.keyFile, Array(first.privateKeyPEM.utf8), mode: 0o600)
            let repaired = try StoredDefaultCertificate.load(from: directory, logger: self.logger, now: late)
            #expect(repaired.certificateChainPEM != renewed.certificateChainPEM)
            #expect(SelfSignedCertificate.problem(with: repaired, now: late) == nil)
            #expect(directory.readFile(StoredDefaultCertificate.keyFile) == Array(repaired.privateKeyPEM.utf8))
        }
    }
}
