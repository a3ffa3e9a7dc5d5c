#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The real file system, through `lstat` and `readlink`.
public struct LocalFileSystemInspector: FileSystemInspector, Sendable {
    /// The inspector.
    public init() {}

    /// The item at `absolutePath`, its final symbolic link not followed.
    public func item(at absolutePath: String) -> FileSystemItem {
        var info = stat()
        guard lstat(absolutePath, &info) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return .regularFile(size: Int(info.st_size))
        case S_IFDIR:
            return .directory
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(absolutePath, &buffer, buffer.count - 1)
            guard length > 0 else { return .missing }
            let bytes = buffer.prefix(length).map { UInt8(bitPattern: $0) }
            return .symbolicLink(destination: String(decoding: bytes, as: UTF8.self))
        default:
            return .other
        }
    }
}
