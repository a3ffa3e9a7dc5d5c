/// A regular-expression Ingress path (ingress-nginx `use-regex`, or implied by `rewrite-target`):
/// matched case-insensitively from the start of the request path, as nginx's `location ~* ^PATH`.
///
/// `@unchecked Sendable`: a `Regex` is an immutable value once built; the lazily compiled
/// program is built here, before the pattern is shared, by one match.
public struct PathPattern: @unchecked Sendable {
    public let source: String
    private let regex: Regex<AnyRegexOutput>

    /// Compiles `path`; throws the Regex parser's error for an invalid pattern.
    public init(_ path: String) throws {
        self.source = path
        self.regex = try Regex("^(?:" + path + ")").ignoresCase()
        _ = try? self.regex.prefixMatch(in: "/")
    }

    /// Whether the path matches from its start.
    public func matches(_ path: Substring) -> Bool {
        (try? self.regex.prefixMatch(in: path)) != nil
    }

    /// The capture groups of a match (`$1`... of a rewrite target), or nil when it does not match.
    /// Group 0 is the whole match; a group that did not take part is empty.
    public func captures(in path: Substring) -> [Substring]? {
        guard let match = try? self.regex.prefixMatch(in: path) else { return nil }
        return match.output.map { $0.substring ?? "" }
    }
}
