/// A position in a manifest file. Lines and columns count from 1.
public struct SourceLocation: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}

/// One problem found in the manifests: where, how bad, and what to do about it.
public struct Diagnostic: Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable, Comparable {
        case error
        case warning

        public static func < (lhs: Severity, rhs: Severity) -> Bool {
            lhs == .error && rhs == .warning
        }
    }

    public var severity: Severity
    public var location: SourceLocation
    public var message: String

    /// A diagnostic; the message is kept to one line (newlines become spaces), since each
    /// problem is printed as exactly one line.
    public init(_ severity: Severity, at location: SourceLocation, _ message: String) {
        self.severity = severity
        self.location = location
        self.message =
            message.contains("\n")
            ? message.split(whereSeparator: \.isNewline).map { $0.trimmedSpaces() }.filter { !$0.isEmpty }
                .joined(separator: " ")
            : message
    }

    public static func error(at location: SourceLocation, _ message: String) -> Diagnostic {
        Diagnostic(.error, at: location, message)
    }

    public static func warning(at location: SourceLocation, _ message: String) -> Diagnostic {
        Diagnostic(.warning, at: location, message)
    }

    /// `FILE:LINE:COLUMN: error|warning: MESSAGE`, the format of `portico check`.
    public var description: String { "\(location): \(severity.rawValue): \(message)" }
}

extension Array where Element == Diagnostic {
    /// Whether any diagnostic is an error.
    public var containsErrors: Bool { contains { $0.severity == .error } }

    /// Diagnostics in file, line, column order, errors before warnings at one position.
    public func sortedByLocation() -> [Diagnostic] {
        sorted { ($0.location, $0.severity, $0.message) < ($1.location, $1.severity, $1.message) }
    }
}
