import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the state directory remembers about a machine's installs.
public struct InstallRecord: Codable, Hashable, Sendable {
    /// Installs the machine reported complete so far.
    public var completedInstalls: Int
    /// The machine's reinstall request when it last reported an install complete: while the
    /// manifests still say the same, the machine boots its local disk.
    public var request: String
    /// When the last install completed (seconds since 1970).
    public var completedAt: Int

    /// A record.
    public init(completedInstalls: Int, request: String, completedAt: Int) {
        self.completedInstalls = completedInstalls
        self.request = request
        self.completedAt = completedAt
    }
}

/// The install records of every machine, by MAC (`aa:bb:cc:dd:ee:ff`), kept in
/// `netboot-installs.json` in the state directory and written atomically (temporary file,
/// fsync, rename, fsync of the directory) before a completion is acknowledged, so a machine
/// that reported its install never installs again by accident, across restarts too.
/// Without a state directory the records live in memory only.
public final class InstallLedger: @unchecked Sendable {
    /// The file name in the state directory.
    public static let fileName = "netboot-installs.json"

    /// The file, or `nil` for memory only.
    public let path: String?
    private let lock = NSLock()
    private var records: [String: InstallRecord] = [:]

    private struct File: Codable {
        var machines: [String: InstallRecord]
    }

    /// A ledger in `stateDirectory` (read at once), or in memory when it is `nil`. A file that
    /// cannot be read or decoded is an error: the ledger is never replaced silently.
    public init(stateDirectory: String?) throws(InstallLedgerError) {
        guard let stateDirectory else {
            self.path = nil
            return
        }
        let path = stateDirectory.hasSuffix("/") ? stateDirectory + Self.fileName : stateDirectory + "/" + Self.fileName
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        do {
            self.records = try JSONDecoder().decode(File.self, from: data).machines
        } catch {
            throw .corrupt(path, "\(error)")
        }
    }

    /// Every record, by MAC.
    public func snapshot() -> [String: InstallRecord] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.records
    }

    /// The record of `hardwareAddress`.
    public func record(for hardwareAddress: HardwareAddress) -> InstallRecord? {
        self.snapshot()[hardwareAddress.description]
    }

    /// Records that `hardwareAddress` completed an install while its reinstall request was
    /// `request`, and persists it before returning.
    @discardableResult
    public func recordCompletion(
        of hardwareAddress: HardwareAddress,
        request: String,
        now: Int
    ) throws(InstallLedgerError) -> InstallRecord {
        self.lock.lock()
        defer { self.lock.unlock() }
        let key = hardwareAddress.description
        var updated = self.records
        let previous = updated[key]
        let record = InstallRecord(
            completedInstalls: (previous?.completedInstalls ?? 0) + 1,
            request: request,
            completedAt: now
        )
        updated[key] = record
        try self.persist(updated)
        self.records = updated
        return record
    }

    private func persist(_ records: [String: InstallRecord]) throws(InstallLedgerError) {
        guard let path else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(File(machines: records))) + [0x0A]
        } catch {
            throw .writeFailed(path, "\(error)")
        }
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .writeFailed(path, "open: \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(descriptor)
                unlink(temporary)
                throw .writeFailed(path, "write: \(reason)")
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            unlink(temporary)
            throw .writeFailed(path, "fsync: \(reason)")
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .writeFailed(path, "rename: \(reason)")
        }
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

/// Why the install ledger cannot be read or written.
public enum InstallLedgerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file exists but cannot be read.
    case unreadable(String)
    /// The file is not a ledger.
    case corrupt(String, String)
    /// Persisting failed; the completion was not recorded.
    case writeFailed(String, String)

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read the install ledger \(path)"
        case .corrupt(let path, let reason):
            "the install ledger \(path) is not valid (\(reason)); fix it or move it away (machines may then reinstall)"
        case .writeFailed(let path, let reason): "cannot record the install in \(path): \(reason)"
        }
    }
}
