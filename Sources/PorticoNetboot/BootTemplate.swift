import Mustache

/// A Mustache template for a boot file (pxelinux menu, iPXE script, kickstart, preseed,
/// cloud-init user-data, ...). Rendering is strict: a name the variables do not define is
/// reported, never silently rendered as an empty string, and text is never HTML-escaped.
public struct BootTemplate: Sendable {
    /// The template's source text.
    public let text: String
    private let template: MustacheTemplate

    /// Where a template fails to parse: 1-based line and column in `text`, and why.
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// Line in the template text, from 1.
        public var line: Int
        /// Column in the template text, from 1.
        public var column: Int
        /// What is wrong, in words.
        public var reason: String

        public var description: String { "line \(line), column \(column): \(reason)" }
    }

    /// What rendering produced: the text and the names that were looked up but not defined.
    public struct Rendering: Hashable, Sendable {
        /// The rendered text.
        public var text: String
        /// Undefined names in the order first met (dotted for nested lookups: `disk.device`).
        public var missing: [String]
    }

    /// The content-type pragma put before every template so variables are not HTML-escaped. On
    /// a line of its own (which Mustache removes) so the template's first line keeps its
    /// standalone-tag handling.
    private static let textPragma = "{{% CONTENT_TYPE: TEXT}}\n"

    /// Parses `text`.
    public init(_ text: String) throws(ParseError) {
        self.text = text
        do {
            self.template = try MustacheTemplate(string: Self.textPragma + text)
        } catch let error as MustacheTemplate.ParserError {
            let line = max(error.context.lineNumber - 1, 1)
            let column = error.context.columnNumber
            throw ParseError(line: line, column: column, reason: Self.reason(error.error))
        } catch {
            throw ParseError(line: 1, column: 1, reason: "\(error)")
        }
    }

    /// Renders with `variables`; names not among them are listed in `missing`.
    public func render(_ variables: [String: TemplateValue]) -> Rendering {
        let recorder = MissingVariableRecorder()
        let root = StrictScope(values: variables, path: "", recorder: recorder)
        let text = self.template.render(root)
        return Rendering(text: text, missing: recorder.names)
    }

    /// Where `name` is first used in the template text (1-based line and column), to point
    /// messages at it.
    public func position(of name: String) -> (line: Int, column: Int)? {
        let head = name.split(separator: ".").first.map(String.init) ?? name
        var line = 1
        var column = 1
        var index = self.text.startIndex
        while index < self.text.endIndex {
            if self.text[index...].hasPrefix("{{") {
                var inner = self.text.index(index, offsetBy: 2)
                while inner < self.text.endIndex, "{&#^/ ".contains(self.text[inner]) {
                    inner = self.text.index(after: inner)
                }
                if self.text[inner...].hasPrefix(head) {
                    let after = self.text.index(inner, offsetBy: head.count)
                    if after == self.text.endIndex || " .}|(".contains(self.text[after]) { return (line, column) }
                }
            }
            if self.text[index] == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            index = self.text.index(after: index)
        }
        return nil
    }

    private static func reason(_ error: any Error) -> String {
        guard let error = error as? MustacheTemplate.Error else { return "\(error)" }
        switch error {
        case .sectionCloseNameIncorrect: return "a section is closed with a different name than it was opened with"
        case .unfinishedName: return "a tag is not closed with }}"
        case .expectedSectionEnd: return "a section is opened but never closed"
        case .invalidSetDelimiter: return "the set-delimiter tag is malformed"
        case .transformAppliedToInheritanceSection: return "a transform is applied to an inheritance section"
        case .illegalTokenInsideInheritSection: return "an inheritance section holds something other than blocks"
        case .textInsideInheritSection: return "an inheritance section holds text"
        case .invalidConfigVariableSyntax: return "a {{% }} tag is malformed"
        case .unrecognisedConfigVariable: return "a {{% }} tag names an unknown setting"
        }
    }
}

/// Collects the names a rendering looked up and did not find. One per rendering.
final class MissingVariableRecorder {
    private(set) var names: [String] = []
    private var seen: Set<String> = []

    func record(_ name: String) {
        if self.seen.insert(name).inserted { self.names.append(name) }
    }
}

/// A mapping that can report names it does not have. Mustache looks a name up in the innermost
/// section's value first and falls back to the enclosing ones, so only a miss at the outermost
/// scope (the one with a recorder) means the name is undefined; nested maps report nothing.
final class StrictScope: MustacheParent {
    private let values: [String: TemplateValue]
    private let path: String
    private let recorder: MissingVariableRecorder?

    init(values: [String: TemplateValue], path: String, recorder: MissingVariableRecorder?) {
        self.values = values
        self.path = path
        self.recorder = recorder
    }

    func child(named name: String) -> Any? {
        let path = self.path.isEmpty ? name : "\(self.path).\(name)"
        guard let value = self.values[name] else {
            if !name.isEmpty { self.recorder?.record(path) }
            return nil
        }
        return value.mustacheValue()
    }
}
