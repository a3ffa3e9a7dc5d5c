import Foundation
import Testing

/// `serve --access-log`: a line per request, JSON or logfmt.
@Suite(.serialized) struct AccessLogTests {
    private func serve(format: String, requests: [(host: String, path: String)]) async throws -> [String] {
        let upstream = try await TestUpstream(name: "app")
        defer { Task { await upstream.close() } }
        let (http, https, admin) = (freePort(), freePort(), freePort())
        let directory = try ManifestDirectory(
            ServeTests.manifests(
                http: http,
                https: https,
                upstream: upstream.port,
                certificate: try makeCertificate(names: ["app.example.test"])
            )
        )
        let logFile = directory.url.appendingPathComponent("access.log")
        let serve = try ServeProcess(
            arguments: [directory.path, "--access-log", logFile.path, "--access-log-format", format],
            adminPort: admin
        )
        try serve.waitUntilReady()
        for (host, path) in requests {
            _ = try Curl.get("http://127.0.0.1:\(http)\(path)", ["-H", "Host: \(host)"])
        }
        // Lines are flushed every 200 ms; SIGTERM writes what is left.
        #expect(serve.terminate() == 0, "\(serve.log)")
        let text = try String(contentsOf: logFile, encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
    }

    @Test func jsonLinesDescribeEachRequest() async throws {
        let lines = try await self.serve(
            format: "json",
            requests: [("app.example.test", "/hello?x=\"y\""), ("nowhere.example.test", "/")]
        )
        #expect(lines.count == 2, "\(lines)")
        let first = try #require(
            lines.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        )
        #expect(first["status"] as? Int == 200)
        #expect(first["method"] as? String == "GET")
        #expect(first["uri"] as? String == "/hello?x=\"y\"")
        #expect(first["host"] as? String == "app.example.test")
        #expect(first["service"] as? String == "default/app")
        #expect((first["upstream"] as? String)?.hasPrefix("127.0.0.1:") == true)
        #expect(first["client"] as? String == "127.0.0.1")
        #expect((first["bytes_sent"] as? Int ?? 0) > 0)
        #expect(first["duration_ms"] is Double || first["duration_ms"] is Int)
        let second = try #require(
            lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        )
        #expect(second["status"] as? Int == 404)
        #expect(second["upstream"] as? String == "")
    }

    @Test func logfmtQuotesWhatNeedsIt() async throws {
        let lines = try await self.serve(format: "logfmt", requests: [("app.example.test", "/a%20b")])
        #expect(lines.count == 1, "\(lines)")
        let line = lines.first ?? ""
        #expect(line.contains(" method=GET host=app.example.test uri=/a%20b protocol=HTTP/1.1 status=200 "), "\(line)")
        #expect(line.contains(" service=default/app upstream=127.0.0.1:"))
    }
}
