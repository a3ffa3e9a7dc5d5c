import Foundation

/// Runs the real `portico` binary built next to the test bundle (or `PORTICO_BINARY`).
enum PorticoProcess {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String

        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["PORTICO_BINARY"] {
            return URL(fileURLWithPath: path)
        }
        // The test runner lives in .build/<configuration>/, next to the product.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = runner.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("portico")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/portico")
    }

    /// The repository root, for the examples.
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    static func run(_ arguments: [String]) throws -> Output {
        let errorPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "portico-stderr-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        let (status, output) = try ChildProcess.run([binary.path] + arguments, stderrPath: errorPath)
        let errors = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return Output(status: status, stdout: output, stderr: errors)
    }
}

/// A temporary directory of manifest files, removed when the value goes away.
final class ManifestDirectory {
    let url: URL

    init(_ files: [String: String] = [:]) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("portico-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (name, text) in files {
            try write(name, text)
        }
    }

    func write(_ name: String, _ text: String) throws {
        try write(name, Data(text.utf8))
    }

    func write(_ name: String, _ data: Data) throws {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }

    var path: String { url.path }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}
