/// A template variable's value: a string, a boolean (for `{{#flag}}` sections), a list (for
/// `{{#keys}}{{.}}{{/keys}}`) or a mapping (for `{{disk.device}}`).
public enum TemplateValue: Hashable, Sendable {
    /// Text, inserted as is (templates render plain text, never HTML-escaped).
    case string(String)
    /// A flag: a section renders once when true, never when false.
    case bool(Bool)
    /// A list: a section renders once per element.
    case list([TemplateValue])
    /// Named values, reached with dotted names.
    case map([String: TemplateValue])

    /// The value as Mustache reads it.
    func mustacheValue() -> Any {
        switch self {
        case .string(let text): text
        case .bool(let flag): flag
        case .list(let values): values.map { $0.mustacheValue() }
        case .map(let values): StrictScope(values: values, path: "", recorder: nil)
        }
    }

    /// The value in a JSON-like form for the plan: strings, booleans, lists and maps.
    public var summary: String {
        switch self {
        case .string(let text): text
        case .bool(let flag): flag ? "true" : "false"
        case .list(let values): "[" + values.map(\.summary).joined(separator: ", ") + "]"
        case .map(let values):
            "{" + values.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.summary)" }.joined(separator: ", ")
                + "}"
        }
    }
}

extension TemplateValue: ExpressibleByStringLiteral {
    /// A string value.
    public init(stringLiteral value: String) {
        self = .string(value)
    }
}

extension TemplateValue: ExpressibleByBooleanLiteral {
    /// A boolean value.
    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }
}

extension TemplateValue: ExpressibleByArrayLiteral {
    /// A list value.
    public init(arrayLiteral elements: TemplateValue...) {
        self = .list(elements)
    }
}
