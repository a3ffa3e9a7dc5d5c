import Foundation
import Yams

/// Reads manifest files and directories into ``Manifests``.
///
/// Directories are walked recursively for `*.yaml` and `*.yml` files (hidden entries
/// skipped), in path order so that the result does not depend on the file system.
/// Nothing here throws: every problem becomes a diagnostic with its position.
public enum ManifestLoader {
    /// Files larger than this are refused. Kubernetes itself stores at most about 1.5 MB
    /// per object, so a manifest file this large is almost certainly a mistake.
    public static let maximumFileSize = 8 * 1024 * 1024

    /// Loads, decodes and validates everything under `paths`.
    /// - Parameter now: the time certificates are checked against (seconds since 1970).
    public static func load(paths: [String], now: Int? = nil) -> Manifests {
        var manifests = Manifests()
        for file in manifestFiles(paths, diagnostics: &manifests.diagnostics) {
            manifests.files.append(file)
            guard let text = readText(file, diagnostics: &manifests.diagnostics) else { continue }
            decode(text: text, file: file, into: &manifests)
        }
        ManifestValidator.validate(&manifests, now: now ?? Int(Date().timeIntervalSince1970))
        return manifests
    }

    /// Decodes and validates manifests given as text (for tests and standard input).
    public static func load(
        texts: [(file: String, text: String)],
        now: Int? = nil
    ) -> Manifests {
        var manifests = Manifests()
        for (file, text) in texts {
            manifests.files.append(file)
            decode(text: text, file: file, into: &manifests)
        }
        ManifestValidator.validate(&manifests, now: now ?? Int(Date().timeIntervalSince1970))
        return manifests
    }

    /// Decodes one file's text, without the checks across resources.
    public static func decode(text: String, file: String, into manifests: inout Manifests) {
        let sink = DiagnosticSink(file: file, text: text)
        defer { manifests.diagnostics += sink.diagnostics }
        let parser: Parser
        do {
            parser = try Parser(yaml: text, resolver: .basic)
        } catch {
            sink.append(yamlDiagnostic(error, file: file))
            return
        }
        var documentIndex = 0
        while true {
            let root: Node?
            do {
                root = try parser.nextRoot()
            } catch {
                sink.append(yamlDiagnostic(error, file: file))
                return
            }
            guard let root else { break }
            documentIndex += 1
            let field = Field(node: root, path: "", sink: sink)
            if field.isNull { continue }
            ResourceDecoder(sink: sink).decodeDocument(field, into: &manifests)
        }
        if documentIndex == 0 {
            sink.warning(SourceLocation(file: file, line: 1, column: 1), "file contains no resources")
        }
    }

    static func yamlDiagnostic(_ error: any Error, file: String) -> Diagnostic {
        guard let yamlError = error as? YamlError else {
            return .error(at: SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) (\($0.text))" } ?? problem
            return .error(
                at: SourceLocation(file: file, line: mark.line, column: mark.column),
                "invalid YAML: \(detail)"
            )
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            return .error(
                at: SourceLocation(file: file, line: context.mark.line, column: context.mark.column),
                "duplicate key \(keys) in this mapping; each key may appear only once"
            )
        case .reader(let problem, _, _, _):
            return .error(at: SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(problem)")
        default:
            return .error(at: SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(yamlError)")
        }
    }

    /// The manifest files under `paths`, sorted within each directory (for change detection).
    public static func manifestFiles(_ paths: [String]) -> [String] {
        var ignored: [Diagnostic] = []
        return manifestFiles(paths, diagnostics: &ignored)
    }

    /// The manifest files under `paths`, sorted within each directory.
    static func manifestFiles(_ paths: [String], diagnostics: inout [Diagnostic]) -> [String] {
        var result: [String] = []
        let fileManager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                diagnostics.append(
                    .error(at: SourceLocation(file: path, line: 1, column: 1), "no such file or directory")
                )
                continue
            }
            if !isDirectory.boolValue {
                result.append(path)
                continue
            }
            var found: [String] = []
            walk(path, into: &found, depth: 0)
            if found.isEmpty {
                diagnostics.append(
                    .warning(
                        at: SourceLocation(file: path, line: 1, column: 1),
                        "directory contains no *.yaml or *.yml files"
                    )
                )
            }
            result += found
        }
        return result
    }

    private static func walk(_ directory: String, into found: inout [String], depth: Int) {
        guard depth < 32, let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            return
        }
        for entry in entries.sorted() where !entry.hasPrefix(".") {
            let path =
                directory == "." ? entry : directory.hasSuffix("/") ? directory + entry : directory + "/" + entry
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                walk(path, into: &found, depth: depth + 1)
            } else if entry.hasSuffix(".yaml") || entry.hasSuffix(".yml") {
                found.append(path)
            }
        }
    }

    /// The file's text, or nil with a diagnostic when it is too large, binary or not UTF-8.
    static func readText(_ file: String, diagnostics: inout [Diagnostic]) -> String? {
        let start = SourceLocation(file: file, line: 1, column: 1)
        guard let handle = FileHandle(forReadingAtPath: file) else {
            diagnostics.append(.error(at: start, "cannot open file for reading"))
            return nil
        }
        defer { try? handle.close() }
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        if size > maximumFileSize {
            diagnostics.append(
                .error(
                    at: start,
                    "file is \(size / 1_048_576) MiB; manifest files over \(maximumFileSize / 1_048_576) MiB are refused (Kubernetes objects are at most about 1.5 MB)"
                )
            )
            return nil
        }
        let data = (try? handle.readToEnd()) ?? Data()
        if data.count > maximumFileSize {
            diagnostics.append(.error(at: start, "file grew over \(maximumFileSize / 1_048_576) MiB while reading"))
            return nil
        }
        if let zero = data.firstIndex(of: 0) {
            let (line, column) = position(of: zero, in: data)
            diagnostics.append(
                .error(
                    at: SourceLocation(file: file, line: line, column: column),
                    "file contains a NUL byte; it looks binary, not a YAML manifest"
                )
            )
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            diagnostics.append(.error(at: start, "file is not valid UTF-8 text"))
            return nil
        }
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            diagnostics.append(.warning(at: start, "file is empty"))
            return nil
        }
        return text
    }

    private static func position(of offset: Int, in data: Data) -> (Int, Int) {
        var line = 1
        var column = 1
        for byte in data[data.startIndex..<offset] {
            if byte == 0x0A {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
