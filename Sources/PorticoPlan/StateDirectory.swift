import Foundation
public import PorticoAllocation
public import PorticoModel

/// The state directory: where the allocation lock lives (and the self-signed default
/// certificate, when an HTTPS front has no certificate).
///
/// The lock is what keeps addresses stable: the plan takes it as input, so an address never
/// moves because something unrelated changed, and nodes given the same manifests and lock
/// compute the same allocations.
public struct StateDirectory: Sendable {
    public static let lockFileName = "allocations.lock.json"

    public var path: String

    public init(path: String) {
        self.path = path
    }

    public var lockPath: String { (path as NSString).appendingPathComponent(Self.lockFileName) }

    /// The recorded allocations. A missing lock is an empty one; a corrupt one is an error
    /// diagnostic (it is never trusted blindly, and never silently replaced).
    public func readLock() -> (AllocationLock, [Diagnostic]) {
        guard FileManager.default.fileExists(atPath: lockPath) else { return (AllocationLock(), []) }
        guard let data = FileManager.default.contents(atPath: lockPath) else {
            return (
                AllocationLock(),
                [.error(at: SourceLocation(file: lockPath, line: 1, column: 1), "cannot read the allocation lock")]
            )
        }
        do {
            return (try AllocationLock.decode(Array(data)), [])
        } catch {
            return (
                AllocationLock(),
                [
                    .error(
                        at: SourceLocation(file: lockPath, line: 1, column: 1),
                        "the allocation lock is not valid (\(error)); fix it or move it away to allocate afresh (addresses may then change)"
                    )
                ]
            )
        }
    }

    /// Writes the lock atomically: a temporary file in the same directory, fsync, rename,
    /// then fsync of the directory, so a crash leaves either the old or the new lock.
    public func writeLock(_ lock: AllocationLock) throws {
        try self.writeFile(Self.lockFileName, lock.encode(), mode: 0o644)
    }

    /// The path of a file of the state directory.
    public func filePath(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// The bytes of a file of the state directory, or nil when it does not exist or cannot be read.
    public func readFile(_ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: self.filePath(name)).map { Array($0) }
    }

    /// Writes a file of the state directory atomically (temporary file with `mode`, fsync,
    /// rename, fsync of the directory), creating the directory when needed.
    public func writeFile(_ name: String, _ bytes: [UInt8], mode: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let target = self.filePath(name)
        let temporary = target + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode))
        guard descriptor >= 0 else { throw StateError.system("open \(temporary)", errno) }
        // A temporary file left by a crash may have another mode: the new content gets this one.
        fchmod(descriptor, mode_t(mode))
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(descriptor)
                unlink(temporary)
                throw StateError.system("write \(temporary)", code)
            }
            written += result
        }
        if fsync(descriptor) != 0 {
            let code = errno
            close(descriptor)
            unlink(temporary)
            throw StateError.system("fsync \(temporary)", code)
        }
        close(descriptor)
        if rename(temporary, target) != 0 {
            let code = errno
            unlink(temporary)
            throw StateError.system("rename to \(target)", code)
        }
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}

public enum StateError: Error, CustomStringConvertible {
    case system(String, Int32)

    public var description: String {
        switch self {
        case .system(let what, let code): return "\(what): \(String(cString: strerror(code)))"
        }
    }
}
