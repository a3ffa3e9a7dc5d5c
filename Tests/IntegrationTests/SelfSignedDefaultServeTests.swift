import Foundation
import Testing

/// An HTTPS front with no certificate at all: `check` says what will be served, and `serve`
/// serves the same self-signed certificate across a reload and a restart with one state directory.
@Suite(.serialized) struct SelfSignedDefaultServeTests {
    /// The front, an app and an Ingress without any TLS section or Secret.
    static func manifests(http: Int, https: Int, upstream: Int, route: String = "/") -> [String: String] {
        ServeTests.manifests(http: http, https: https, upstream: upstream, certificate: nil, route: route)
    }

    /// Subject and SHA-256 fingerprint of the certificate served on `port`, read by openssl.
    static func servedCertificate(port: Int) throws -> String {
        let result = try ChildProcess.run([
            "sh", "-c",
            "openssl s_client -connect 127.0.0.1:\(port) -servername app.example.test </dev/null 2>/dev/null"
                + " | openssl x509 -noout -subject -fingerprint -sha256",
        ])
        return result.output
    }

    @Test func servesOneSelfSignedCertificateAcrossReloadsAndRestarts() async throws {
        let upstream = try await TestUpstream(name: "app")
        defer { Task { await upstream.close() } }
        let (http, https, admin) = (freePort(), freePort(), freePort())
        let directory = try ManifestDirectory(Self.manifests(http: http, https: https, upstream: upstream.port))
        let state = try ManifestDirectory()

        let check = try PorticoProcess.run(["check", directory.path])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(
            check.stdout.contains(
                "warning: Service default/front: no certificate for the https port: it serves a self-signed \"Portico Default Certificate\""
            ),
            "\(check.stdout)\(check.stderr)"
        )
        let plan = try PorticoProcess.run(["plan", directory.path])
        #expect(plan.stdout.contains("Portico Default Certificate"), "\(plan.stdout)")

        var serve = try ServeProcess(arguments: [directory.path, "--state-dir", state.path], adminPort: admin)
        try serve.waitUntilReady()
        let first = try Self.servedCertificate(port: https)
        #expect(first.contains("CN = Portico Default Certificate"), "\(first)\n\(serve.log)")
        #expect(first.contains("Fingerprint="), "\(first)")
        let response = try Curl.get(
            "https://app.example.test:\(https)/x",
            ["--resolve", "app.example.test:\(https):127.0.0.1"]
        )
        #expect(response.status == 200, "\(response)")
        let keyMode =
            try FileManager.default.attributesOfItem(
                atPath: state.url.appendingPathComponent("default-certificate.key").path
            )[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        // A reload (a changed route) keeps the certificate.
        for (name, text) in Self.manifests(http: http, https: https, upstream: upstream.port, route: "/api") {
            try directory.write(name, text)
        }
        #expect(serve.waitForLog("reason=manifest files changed"), "\(serve.log)")
        #expect(try Self.servedCertificate(port: https) == first)
        serve.process.signal(SIGHUP)
        #expect(serve.waitForLog("reason=SIGHUP"), "\(serve.log)")
        #expect(try Self.servedCertificate(port: https) == first)
        #expect(serve.terminate() == 0, "\(serve.log)")

        // A restart with the same state directory serves it again.
        serve = try ServeProcess(arguments: [directory.path, "--state-dir", state.path], adminPort: admin)
        try serve.waitUntilReady()
        #expect(try Self.servedCertificate(port: https) == first, "\(serve.log)")
        #expect(serve.terminate() == 0, "\(serve.log)")

        // Without the state directory's files, a new one is made.
        try FileManager.default.removeItem(at: state.url.appendingPathComponent("default-certificate.key"))
        serve = try ServeProcess(arguments: [directory.path, "--state-dir", state.path], adminPort: admin)
        try serve.waitUntilReady()
        let second = try Self.servedCertificate(port: https)
        #expect(second.contains("CN = Portico Default Certificate"))
        #expect(second != first)
        #expect(serve.terminate() == 0, "\(serve.log)")
    }
}
