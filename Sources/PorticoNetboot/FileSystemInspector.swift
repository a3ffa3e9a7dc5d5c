/// What is at a path, without following a final symbolic link (like `lstat`).
public enum FileSystemItem: Hashable, Sendable {
    /// A regular file of this many bytes.
    case regularFile(size: Int)
    /// A directory.
    case directory
    /// A symbolic link and its destination text.
    case symbolicLink(destination: String)
    /// A device, socket or pipe.
    case other
    /// Nothing (or not accessible).
    case missing
}

/// Looks at the file system; a protocol so symbolic-link escapes are testable in memory.
public protocol FileSystemInspector {
    /// The item at `absolutePath` (`/` separated, no final link followed).
    func item(at absolutePath: String) -> FileSystemItem
}

/// A file found inside the TFTP root.
public struct ResolvedFile: Hashable, Sendable {
    /// Its absolute path with every symbolic link resolved.
    public var path: String
    /// Its size in bytes.
    public var size: Int
}

/// Resolves sanitised TFTP paths under a root the way `realpath` would, refusing anything
/// that ends outside the root.
public enum TFTPPathResolver {
    /// Symbolic links followed at most, as Linux does.
    public static let maximumSymbolicLinks = 40

    /// The regular file `path` names under `root` (an absolute path), every link followed.
    public static func resolve(
        _ path: TFTPPath,
        root: String,
        inspector: some FileSystemInspector
    ) throws(TFTPPathError) -> ResolvedFile {
        let rootComponents = try self.canonicalize(root.split(separator: "/").map(String.init), inspector: inspector)
        let components = try self.canonicalize(rootComponents + path.components, inspector: inspector)
        guard components.count > rootComponents.count, Array(components.prefix(rootComponents.count)) == rootComponents
        else { throw .outsideRoot }
        let absolute = "/" + components.joined(separator: "/")
        guard case .regularFile(let size) = inspector.item(at: absolute) else { throw .notARegularFile }
        return ResolvedFile(path: absolute, size: size)
    }

    /// The canonical components of an absolute path whose items all exist.
    static func canonicalize(
        _ components: [String],
        inspector: some FileSystemInspector
    ) throws(TFTPPathError) -> [String] {
        var resolved: [String] = []
        var pending = Array(components.reversed())
        var links = 0
        while let next = pending.popLast() {
            if next.isEmpty || next == "." { continue }
            if next == ".." {
                _ = resolved.popLast()
                continue
            }
            let candidate = "/" + (resolved + [next]).joined(separator: "/")
            switch inspector.item(at: candidate) {
            case .missing:
                throw .notFound
            case .symbolicLink(let destination):
                links += 1
                guard links <= Self.maximumSymbolicLinks else { throw .tooManySymbolicLinks }
                if destination.hasPrefix("/") { resolved = [] }
                pending += destination.split(separator: "/").map(String.init).reversed()
            case .directory:
                resolved.append(next)
            case .regularFile, .other:
                // Only the last component may be something other than a directory.
                guard pending.allSatisfy({ $0.isEmpty || $0 == "." }) else { throw .notFound }
                resolved.append(next)
            }
        }
        return resolved
    }
}
