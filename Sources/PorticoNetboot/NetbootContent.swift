import Foundation
public import Logging
public import NIOCore

/// What the netboot servers serve right now: the renderer of the plan in force, the boot
/// loaders read from their directories, and the install ledger. Swapped whole on reload;
/// read from the servers' event loops.
public final class NetbootContent: @unchecked Sendable {
    /// One consistent set.
    public struct Snapshot: Sendable {
        /// Renders the per-machine files.
        public var renderer: BootFileRenderer
        /// Boot loader files by name.
        public var bootLoaders: [String: [UInt8]]
        /// The assets directory, if any.
        public var assetsDirectory: String?
    }

    /// Install records, persisted in the state directory.
    public let ledger: InstallLedger
    private let lock = NSLock()
    private var current: Snapshot

    /// Content serving `snapshot`.
    public init(_ snapshot: Snapshot, ledger: InstallLedger) {
        self.current = snapshot
        self.ledger = ledger
    }

    /// The content in force.
    public var snapshot: Snapshot {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.current
    }

    /// Replaces the content (on reload).
    public func replace(with snapshot: Snapshot) {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.current = snapshot
    }
}

/// Reads boot loader files (pxelinux.0, ldlinux.c32, undionly.kpxe, ipxe.efi, ...) from their
/// directories into memory once, so serving them never blocks an event loop.
public enum BootLoaderDirectories {
    /// Largest file read: boot loaders are small.
    public static let maximumFileSize = 16 * 1024 * 1024
    /// Most bytes read in all.
    public static let maximumTotalSize = 128 * 1024 * 1024

    /// The regular files directly in `directories` (links followed), by name; the first
    /// directory holding a name wins. Missing directories are skipped and listed.
    public static func load(_ directories: [String]) -> (files: [String: [UInt8]], missing: [String]) {
        var files: [String: [UInt8]] = [:]
        var missing: [String] = []
        var total = 0
        for directory in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
                missing.append(directory)
                continue
            }
            for name in names.sorted() where files[name] == nil && !name.hasPrefix(".") {
                let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                    attributes[.type] as? FileAttributeType == .typeRegular
                        || attributes[.type] as? FileAttributeType == .typeSymbolicLink,
                    let data = FileManager.default.contents(atPath: path), data.count <= Self.maximumFileSize,
                    total + data.count <= Self.maximumTotalSize
                else { continue }
                total += data.count
                files[name] = Array(data)
            }
        }
        return (files, missing)
    }
}

/// Serves `pxelinux.cfg/` files rendered per machine and the boot loaders over TFTP.
public struct NetbootTFTPFiles: TFTPVirtualFileProvider {
    /// The content in force.
    public let content: NetbootContent
    private let logger: Logger

    /// A provider reading `content`.
    public init(content: NetbootContent, logger: Logger) {
        self.content = content
        self.logger = logger
    }

    public func contents(of path: TFTPPath, for client: SocketAddress) -> [UInt8]? {
        let snapshot = self.content.snapshot
        if let name = PXELinuxConfigName(path: path) {
            switch snapshot.renderer.pxelinuxConfig(for: name, records: self.content.ledger.snapshot()) {
            case .rendered(let text):
                return Array(text.utf8)
            case .undefined(let names):
                self.logger.error(
                    "pxelinux menu not served: its template uses undefined variables",
                    metadata: ["tftp.file": "\(path)", "netboot.undefined": "\(names)"]
                )
                return nil
            case .unknownMachine, .noSuchTemplate, nil:
                return nil
            }
        }
        if path.components.count == 1, let bytes = snapshot.bootLoaders[path.components[0]] {
            return bytes
        }
        return nil
    }
}
