/// A Service's identity, `namespace/name`. Keys order by namespace, then name.
public struct ServiceKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The namespace.
    public var namespace: String
    /// The Service's name.
    public var name: String

    /// A key from its parts.
    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// Parses `namespace/name` (both non-empty, one slash); nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.init(namespace: String(parts[0]), name: String(parts[1]))
    }

    public static func < (lhs: ServiceKey, rhs: ServiceKey) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }

    /// `namespace/name`.
    public var description: String { "\(namespace)/\(name)" }
}

extension ServiceKey: Codable {
    /// Decodes `namespace/name`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let key = ServiceKey(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not namespace/name")
        }
        self = key
    }

    /// Encodes `namespace/name`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
