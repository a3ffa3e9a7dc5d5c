/// A requested TFTP file name made safe: `\` read as `/`, leading `/` dropped, empty and `.`
/// components dropped, and `..` or control characters refused. Relative to the TFTP root.
public struct TFTPPath: Hashable, Sendable, CustomStringConvertible {
    /// The path components, none empty, `.` or `..`.
    public let components: [String]

    /// Sanitises a requested name.
    public init(sanitizing requested: String) throws(TFTPPathError) {
        let normalized = String(requested.map { $0 == "\\" ? "/" : $0 })
        guard !normalized.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalidCharacter
        }
        var components: [String] = []
        for component in normalized.split(separator: "/") where component != "." {
            guard component != ".." else { throw .parentDirectoryReference }
            components.append(String(component))
        }
        guard !components.isEmpty else { throw .empty }
        self.components = components
    }

    /// The components joined by `/`: `pxelinux.cfg/default`.
    public var description: String { self.components.joined(separator: "/") }
}

/// Why a requested file is not served.
public enum TFTPPathError: Error, Hashable, Sendable {
    /// Nothing left after sanitising (`/`, `.`).
    case empty
    /// A `..` component.
    case parentDirectoryReference
    /// A control character.
    case invalidCharacter
    /// No such file (or a non-directory in the middle of the path).
    case notFound
    /// The path, after following symbolic links, leaves the root.
    case outsideRoot
    /// The path names a directory or special file.
    case notARegularFile
    /// Too many symbolic links (a loop).
    case tooManySymbolicLinks

    /// The ERROR packet for the client. Messages are fixed and never contain a path.
    public var errorPacket: TFTPPacket {
        switch self {
        case .empty, .notFound, .notARegularFile:
            .error(.fileNotFound, message: "File not found")
        case .parentDirectoryReference, .invalidCharacter, .outsideRoot, .tooManySymbolicLinks:
            .error(.accessViolation, message: "Access violation")
        }
    }
}
