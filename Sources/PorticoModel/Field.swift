import Yams

/// Collects diagnostics while one file is decoded.
final class DiagnosticSink {
    let file: String
    /// The file's text, to find the indentation of embedded documents.
    let text: String
    /// Added to positions: non-zero while decoding a document embedded in a string.
    var lineOffset = 0
    var columnOffset = 0
    private(set) var diagnostics: [Diagnostic] = []
    /// The resource being decoded, e.g. `Ingress default/blog`, used as a message prefix.
    var subject: String = ""

    init(file: String, text: String = "") {
        self.file = file
        self.text = text
    }

    func location(_ node: Node?) -> SourceLocation {
        let mark = node?.mark
        return SourceLocation(
            file: file,
            line: (mark?.line ?? 1) + lineOffset,
            column: (mark?.column ?? 1) + columnOffset
        )
    }

    /// The number of leading spaces of a 1-based line of the file.
    func indentation(ofLine line: Int) -> Int {
        var current = 1
        var count = 0
        var counting = false
        for byte in text.utf8 {
            if current == line {
                if !counting { counting = true }
                if byte == 0x20 {
                    count += 1
                    continue
                }
                return count
            }
            if byte == 0x0A { current += 1 }
        }
        return count
    }

    func error(_ location: SourceLocation, _ message: String) {
        diagnostics.append(.error(at: location, prefixed(message)))
    }

    func warning(_ location: SourceLocation, _ message: String) {
        diagnostics.append(.warning(at: location, prefixed(message)))
    }

    func append(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
    }

    private func prefixed(_ message: String) -> String {
        subject.isEmpty ? message : "\(subject): \(message)"
    }
}

/// A YAML node with the field path that led to it (`spec.rules[0].host`), for messages.
struct Field {
    let node: Node
    let path: String
    let sink: DiagnosticSink

    var location: SourceLocation { sink.location(node) }

    /// The path as it appears in messages; the document itself is "the document".
    private var displayPath: String { path.isEmpty ? "the document" : path }

    func error(_ message: String) {
        sink.error(location, "\(displayPath): \(message)")
    }

    func warning(_ message: String) {
        sink.warning(location, "\(displayPath): \(message)")
    }

    /// What the node is, in words, for type errors.
    var kindDescription: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch Field.plainType(scalar) {
            case .null: return "null"
            case .bool: return "a boolean (\(scalar.string))"
            case .int: return "a number (\(scalar.string))"
            case .float: return "a number (\(scalar.string))"
            case .string: return "a string"
            }
        }
    }

    enum ScalarType {
        case null
        case bool
        case int
        case float
        case string
    }

    /// How Kubernetes (YAML 1.1 through JSON) reads an unquoted scalar.
    static func plainType(_ scalar: Node.Scalar) -> ScalarType {
        guard scalar.style == .plain || scalar.style == .any else { return .string }
        let text = scalar.string
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO",
            "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N":
            return .bool
        default: break
        }
        if Int(text) != nil || (text.hasPrefix("0x") && Int(text.dropFirst(2), radix: 16) != nil) {
            return .int
        }
        if Double(text) != nil, text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }),
            text.first != "."
        {
            return .float
        }
        return .string
    }

    var isNull: Bool {
        if case .scalar(let scalar) = node { return Field.plainType(scalar) == .null }
        return false
    }

    /// The value as a string. Unquoted numbers and booleans are refused, as the API server
    /// refuses them, with a hint to quote them.
    func string() -> String? {
        guard case .scalar(let scalar) = node else {
            error("expected a string, found \(kindDescription)")
            return nil
        }
        switch Field.plainType(scalar) {
        case .string:
            return scalar.string
        case .null:
            return nil
        case .bool, .int, .float:
            error("expected a string, found \(kindDescription); quote it: \"\(scalar.string)\"")
            return nil
        }
    }

    func int() -> Int? {
        guard case .scalar(let scalar) = node, Field.plainType(scalar) == .int, let value = Int(scalar.string)
        else {
            if isNull { return nil }
            error("expected an integer, found \(kindDescription)")
            return nil
        }
        return value
    }

    func bool() -> Bool? {
        guard case .scalar(let scalar) = node, Field.plainType(scalar) == .bool else {
            if isNull { return nil }
            error("expected true or false, found \(kindDescription)")
            return nil
        }
        return ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"].contains(scalar.string)
    }

    /// An integer, or a string (`targetPort: 8080` or `targetPort: http`).
    func intOrString() -> IntOrString? {
        guard case .scalar(let scalar) = node else {
            error("expected a number or a name, found \(kindDescription)")
            return nil
        }
        switch Field.plainType(scalar) {
        case .int: return Int(scalar.string).map(IntOrString.int)
        case .null: return nil
        default: return .string(scalar.string)
        }
    }

    func list() -> [Field] {
        switch node {
        case .sequence(let sequence):
            return sequence.enumerated().map { Field(node: $0.element, path: "\(path)[\($0.offset)]", sink: sink) }
        default:
            if !isNull { error("expected a list, found \(kindDescription)") }
            return []
        }
    }

    /// The fields of a mapping whose keys are data (labels, annotations, Secret data):
    /// any key is accepted. (Yams already refuses duplicate keys.)
    func mapping() -> Object? {
        guard case .mapping(let mapping) = node else {
            if !isNull { error("expected a mapping, found \(kindDescription)") }
            return nil
        }
        var fields: [String: Field] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let keyScalar) = keyNode else {
                sink.error(sink.location(keyNode), "\(path): mapping keys must be strings")
                continue
            }
            let key = keyScalar.string
            fields[key] = Field(node: value, path: path.isEmpty ? key : "\(path).\(key)", sink: sink)
        }
        return Object(fields: fields, field: self)
    }

    /// The fields of an object; keys outside `known` are reported as unknown.
    func object(_ known: Set<String>) -> Object? {
        guard let object = mapping() else { return nil }
        for (key, child) in object.fields.sorted(by: { $0.key < $1.key }) where !known.contains(key) {
            sink.warning(keyLocation(of: key) ?? child.location, "\(child.path): unknown field, ignored")
        }
        return object
    }

    /// Where a key of this mapping is written.
    private func keyLocation(of key: String) -> SourceLocation? {
        guard case .mapping(let mapping) = node else { return nil }
        for keyNode in mapping.keys where keyNode.scalar?.string == key {
            return sink.location(keyNode)
        }
        return nil
    }

    /// A map of strings (labels, annotations, data).
    func stringMap() -> [String: String] {
        guard let object = mapping() else { return [:] }
        var result: [String: String] = [:]
        for (key, value) in object.fields {
            if let text = value.string() { result[key] = text }
        }
        return result
    }
}

/// The fields of a YAML mapping.
struct Object {
    let fields: [String: Field]
    let field: Field

    subscript(key: String) -> Field? {
        guard let child = fields[key], !child.isNull else { return nil }
        return child
    }

    /// The location of a key's value, or of the mapping when the key is absent.
    func location(_ key: String) -> SourceLocation {
        fields[key]?.location ?? field.location
    }

    func path(_ key: String) -> String {
        field.path.isEmpty ? key : "\(field.path).\(key)"
    }

    func missing(_ key: String, _ hint: String = "") {
        field.sink.error(field.location, "\(path(key)): required field is missing\(hint.isEmpty ? "" : "; \(hint)")")
    }

    func string(_ key: String, required: Bool = false) -> String? {
        let value = self[key]?.string()
        if value == nil, required, fields[key] == nil || fields[key]!.isNull { missing(key) }
        return value
    }

    func int(_ key: String, required: Bool = false) -> Int? {
        let value = self[key]?.int()
        if value == nil, required, fields[key] == nil || fields[key]!.isNull { missing(key) }
        return value
    }

    func bool(_ key: String) -> Bool? { self[key]?.bool() }

    func object(_ key: String, _ known: Set<String>) -> Object? { self[key]?.object(known) }

    /// A mapping whose keys are data, not field names.
    func mapping(_ key: String) -> Object? { self[key]?.mapping() }

    func list(_ key: String) -> [Field] { self[key]?.list() ?? [] }

    func stringList(_ key: String) -> [String] { list(key).compactMap { $0.string() } }

    func stringMap(_ key: String) -> [String: String] { self[key]?.stringMap() ?? [:] }
}
