import Foundation
import NIOCore
import Testing

/// Reloads while requests flow: none may fail (issue 3, item 8).
@Suite(.serialized) struct ReloadUnderLoadTests {
    /// With the fast lane (the default: plain HTTP served from Portico's own epoll loop) and
    /// with `--no-fast-lane` (the NIO engine alone).
    @Test(arguments: [false, true])
    func reloadsDropNoRequest(fastLane: Bool) async throws {
        let upstream = try await TestUpstream(name: "app")
        defer { Task { await upstream.close() } }
        let (http, https, admin) = (freePort(), freePort(), freePort())
        let certificate = try makeCertificate(names: ["app.example.test"])
        let files = ServeTests.manifests(http: http, https: https, upstream: upstream.port, certificate: certificate)
        let directory = try ManifestDirectory(files)
        let serve = try ServeProcess(
            arguments: [directory.path] + (fastLane ? [] : ["--no-fast-lane"]),
            adminPort: admin
        )
        try serve.waitUntilReady()
        // With the lane, the plain listener is the lane's: its thread is there.
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(serve.process.pid)/task")) ?? []
        let names = tasks.compactMap {
            try? String(contentsOfFile: "/proc/\(serve.process.pid)/task/\($0)/comm", encoding: .utf8)
        }
        #expect(names.contains("portico-fast\n") == fastLane, "\(names)")

        let deadline = NIODeadline.now() + .seconds(8)
        async let load = LoadClient.run(
            port: http,
            host: "app.example.test",
            keepAliveConnections: 8,
            freshConnections: 4,
            until: deadline
        )
        // Six reloads while the load runs: three by file change (a route added and removed on
        // another host, so the plan really changes), three by SIGHUP.
        for round in 0..<6 {
            try await Task.sleep(for: .milliseconds(1100))
            if round % 2 == 0 {
                let extra =
                    round % 4 == 0
                    ? files["app.yaml"]!.replacingOccurrences(
                        of: "empty.example.test",
                        with: "other-\(round).example.test"
                    )
                    : files["app.yaml"]!
                try directory.write("app.yaml", extra)
            } else {
                serve.process.signal(SIGHUP)
            }
        }
        let result = await load
        #expect(result.failures.isEmpty, "\(result.failures.prefix(10)) of \(result.failures.count)\n\(serve.log)")
        #expect(result.succeeded > 500, "only \(result.succeeded) requests in 8 s")
        let metrics = try Curl.get("http://127.0.0.1:\(admin)/metrics").body
        let reloads =
            metrics.split(separator: "\n")
            .first { $0.hasPrefix("portico_config_reloads_total{result=\"success\"}") }
            .flatMap { $0.split(separator: " ").last.flatMap { Int($0) } } ?? 0
        #expect(reloads >= 5, "\(reloads) successful reloads\n\(metrics)")
        #expect(serve.terminate() == 0, "\(serve.log)")
    }
}
