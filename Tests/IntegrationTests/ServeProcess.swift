import Foundation

/// A running `portico serve` for a test: started on a manifest directory, stopped with
/// SIGTERM (or killed) when the test is done. Its log goes to a file the test can read.
final class ServeProcess {
    let process: ChildProcess
    let logURL: URL
    let adminPort: Int

    init(arguments: [String], adminPort: Int) throws {
        self.adminPort = adminPort
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("portico-serve-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process = try ChildProcess(
            [PorticoProcess.binary.path, "serve"] + arguments + ["--admin", "127.0.0.1:\(adminPort)"],
            stdout: .file(logURL.path),
            stderr: .file(logURL.path)
        )
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Waits until `/readyz` answers 200, or the process exits, or the time is up.
    func waitUntilReady(timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning {
                throw ServeError.exited(process.wait(), log)
            }
            if let response = try? Curl.get("http://127.0.0.1:\(adminPort)/readyz"), response.status == 200 {
                return
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw ServeError.notReady(log)
    }

    /// Waits until the log contains `text`.
    func waitForLog(_ text: String, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    /// Sends SIGTERM and waits for the exit status.
    func terminate(timeout: Double = 15) -> Int32 {
        process.stop(grace: timeout)
    }

    deinit {
        if process.isRunning { process.stop(grace: 0) }
        try? FileManager.default.removeItem(at: logURL)
    }

    enum ServeError: Error, CustomStringConvertible {
        case exited(Int32, String)
        case notReady(String)

        var description: String {
            switch self {
            case .exited(let status, let log): return "portico serve exited with \(status):\n\(log)"
            case .notReady(let log): return "portico serve did not become ready:\n\(log)"
            }
        }
    }
}

/// curl, the client a user would use.
enum Curl {
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    static func get(_ url: String, _ extra: [String] = []) throws -> Response {
        parse(try ChildProcess.run(["curl", "-s", "-k", "-i", "--max-time", "10"] + extra + [url]).output)
    }

    /// Splits `curl -i` output; with HTTP/2 the status line is `HTTP/2 200`.
    static func parse(_ text: String) -> Response {
        guard let separator = text.range(of: "\r\n\r\n") else { return Response(status: 0, headers: [:], body: text) }
        let lines = text[..<separator.lowerBound].components(separatedBy: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        return Response(status: status, headers: headers, body: String(text[separator.upperBound...]))
    }
}

/// A TCP port that was free a moment ago.
func freePort() -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A self-signed ECDSA certificate made with openssl for the given names.
func makeCertificate(names: [String]) throws -> (certificate: String, key: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-cert-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let status = try ChildProcess.run([
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", directory.appendingPathComponent("key.pem").path,
        "-out", directory.appendingPathComponent("cert.pem").path,
        "-days", "30", "-subj", "/CN=\(names[0])",
        "-addext", "subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ","),
    ]).status
    guard status == 0 else { throw ChildProcess.ChildError.spawn("openssl", status) }
    return (
        try String(contentsOf: directory.appendingPathComponent("cert.pem"), encoding: .utf8),
        try String(contentsOf: directory.appendingPathComponent("key.pem"), encoding: .utf8)
    )
}
