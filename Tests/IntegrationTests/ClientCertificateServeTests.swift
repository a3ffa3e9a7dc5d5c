import Foundation
import Testing

/// ingress-nginx's auth-tls annotations through `portico serve`, with curl presenting (or not)
/// a client certificate made by openssl.
@Suite(.serialized) struct ClientCertificateServeTests {
    /// Certificates made by the openssl command in a temporary directory (EC P-256, 30 days).
    struct OpenSSLPKI {
        let directory: URL
        func file(_ name: String) -> URL { self.directory.appendingPathComponent(name) }
        func text(_ name: String) -> String { (try? String(contentsOf: self.file(name), encoding: .utf8)) ?? "" }

        init(_ prefix: String) throws {
            self.directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("portico-\(prefix)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        }

        /// Writes a file: an extensions file for ``issue(_:by:extensions:)``, a chain.
        func write(_ name: String, _ text: String) throws {
            try text.write(to: self.file(name), atomically: true, encoding: .utf8)
        }

        /// `name.crt` and `name.key`: a self-signed CA.
        func root(_ name: String) throws {
            try self.openssl([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.file("\(name).key").path, "-out", self.file("\(name).crt").path,
                "-days", "30", "-subj", "/CN=\(name)",
            ])
        }

        /// `name.crt` and `name.key`, signed by `issuer` with the extensions file given.
        func issue(_ name: String, by issuer: String, extensions: String) throws {
            try self.openssl([
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.file("\(name).key").path, "-out", self.file("\(name).csr").path, "-subj", "/CN=\(name)",
            ])
            try self.openssl([
                "x509", "-req", "-in", self.file("\(name).csr").path,
                "-CA", self.file("\(issuer).crt").path, "-CAkey", self.file("\(issuer).key").path, "-CAcreateserial",
                "-out", self.file("\(name).crt").path, "-days", "30", "-extfile", self.file(extensions).path,
            ])
        }

        private func openssl(_ arguments: [String]) throws {
            let result = try ChildProcess.run(["openssl"] + arguments)
            guard result.status == 0 else { throw ChildProcess.ChildError.spawn("openssl", result.status) }
        }

        func remove() { try? FileManager.default.removeItem(at: self.directory) }
    }

    /// A CA and a client certificate it signed, plus a client certificate of an unrelated CA.
    static func clientPKI() throws -> OpenSSLPKI {
        let pki = try OpenSSLPKI("pki")
        try pki.write("ext", "extendedKeyUsage=clientAuth\n")
        for name in ["ca", "other-ca"] { try pki.root(name) }
        for (client, ca) in [("client", "ca"), ("stranger", "other-ca")] {
            try pki.issue(client, by: ca, extensions: "ext")
        }
        return pki
    }

    /// ServeTests' manifests with `app.example.test` requiring a client certificate of
    /// `caPEM` (the `client-ca` Secret in `ca.yaml`), optionally with a verify depth.
    static func manifests(
        http: Int,
        https: Int,
        upstream: Int,
        certificate: (String, String),
        caPEM: String,
        depth: String? = nil
    ) -> [String: String] {
        var files = ServeTests.manifests(http: http, https: https, upstream: upstream, certificate: certificate)
        files["app.yaml"] = files["app.yaml"]!.replacingOccurrences(
            of: "annotations: {nginx.ingress.kubernetes.io/ssl-redirect: \"false\"}",
            with: """
                annotations:
                    nginx.ingress.kubernetes.io/ssl-redirect: "false"
                    nginx.ingress.kubernetes.io/auth-tls-verify-client: "on"
                    nginx.ingress.kubernetes.io/auth-tls-secret: default/client-ca
                """ + (depth.map { "\n    nginx.ingress.kubernetes.io/auth-tls-verify-depth: \"\($0)\"" } ?? "")
        )
        files["ca.yaml"] = """
            apiVersion: v1
            kind: Secret
            metadata: {name: client-ca}
            stringData:
              ca.crt: |
            \(ServeTests.indent(caPEM, 4))
            """
        return files
    }

    @Test func verifiesClientCertificatesPerHost() async throws {
        let upstream = try await TestUpstream(name: "app")
        defer { Task { await upstream.close() } }
        let pki = try Self.clientPKI()
        defer { pki.remove() }
        let (http, https, admin) = (freePort(), freePort(), freePort())
        var files = Self.manifests(
            http: http,
            https: https,
            upstream: upstream.port,
            certificate: try makeCertificate(names: ["app.example.test", "open.example.test"]),
            caPEM: pki.text("ca.crt")
        )
        files["ca.yaml"]! += """

            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: open}
            spec:
              ingressClassName: portico
              rules:
              - host: open.example.test
                http:
                  paths:
                  - {path: /, pathType: Prefix, backend: {service: {name: app, port: {name: web}}}}
            """
        let directory = try ManifestDirectory(files)
        let check = try PorticoProcess.run(["check", directory.path])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(!(check.stdout + check.stderr).contains("not yet enforced"), "\(check.stdout)\(check.stderr)")
        let serve = try ServeProcess(arguments: [directory.path], adminPort: admin)
        try serve.waitUntilReady()

        func get(_ host: String, sni: String? = nil, certificate: String? = nil) throws -> Curl.Response {
            let name = sni ?? host
            var extra = ["--resolve", "\(name):\(https):127.0.0.1", "-H", "Host: \(host)"]
            if let certificate {
                extra += ["--cert", pki.file("\(certificate).crt").path, "--key", pki.file("\(certificate).key").path]
            }
            return try Curl.get("https://\(name):\(https)/x", extra)
        }

        var response = try get("app.example.test", certificate: "client")
        #expect(response.status == 200, "\(response)\n\(serve.log)")
        #expect(response.headers["x-seen-ssl-client-verify"] == "SUCCESS")
        // No certificate, or one of another CA: the handshake is refused (curl gets no response).
        #expect(try get("app.example.test").status == 0)
        #expect(try get("app.example.test", certificate: "stranger").status == 0)
        // Another host's SNI cannot reach the protected host; that host itself is open.
        response = try get("app.example.test", sni: "open.example.test")
        #expect(response.status == 421, "\(response)")
        response = try get("open.example.test")
        #expect(response.status == 200)
        #expect(response.headers["x-seen-ssl-client-verify"] == nil)
        #expect(serve.terminate() == 0, "\(serve.log)")
    }

    /// A root CA, an intermediate it signed, and client certificates of the intermediate
    /// (one for client authentication, one for server authentication only), made by openssl;
    /// `NAME-chain.crt` is what a client presents: its certificate, then the intermediate.
    static func chainPKI() throws -> OpenSSLPKI {
        let pki = try OpenSSLPKI("chain")
        try pki.write("ca.ext", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
        try pki.write("client.ext", "extendedKeyUsage=clientAuth\n")
        try pki.write("server.ext", "extendedKeyUsage=serverAuth\n")
        try pki.root("root")
        try pki.issue("intermediate", by: "root", extensions: "ca.ext")
        try pki.issue("client", by: "intermediate", extensions: "client.ext")
        try pki.issue("server-only", by: "intermediate", extensions: "server.ext")
        for name in ["client", "server-only"] {
            try pki.write("\(name)-chain.crt", pki.text("\(name).crt") + pki.text("intermediate.crt"))
        }
        return pki
    }

    /// `auth-tls-verify-depth` through `portico serve`: ca.crt holds the root, the client
    /// presents its certificate and the intermediate.
    @Test func enforcesVerifyDepth() async throws {
        let upstream = try await TestUpstream(name: "app")
        defer { Task { await upstream.close() } }
        let pki = try Self.chainPKI()
        defer { pki.remove() }
        let (http, https, admin) = (freePort(), freePort(), freePort())
        let certificate = try makeCertificate(names: ["app.example.test"])
        func files(depth: String?) -> [String: String] {
            Self.manifests(
                http: http,
                https: https,
                upstream: upstream.port,
                certificate: certificate,
                caPEM: pki.text("root.crt"),
                depth: depth
            )
        }
        let directory = try ManifestDirectory(files(depth: nil))
        let check = try PorticoProcess.run(["check", directory.path])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let serve = try ServeProcess(arguments: [directory.path], adminPort: admin)
        try serve.waitUntilReady()

        func get(_ chain: String, key: String) throws -> Int {
            try Curl.get(
                "https://app.example.test:\(https)/x",
                [
                    "--resolve", "app.example.test:\(https):127.0.0.1",
                    "--cert", pki.file(chain).path, "--key", pki.file(key).path,
                ]
            ).status
        }

        // The default depth 1: only certificates signed by the root itself.
        #expect(try get("client-chain.crt", key: "client.key") == 0, "\(serve.log)")
        #expect(serve.log.contains("client certificate refused"), "\(serve.log)")
        #expect(serve.log.contains("auth-tls-verify-depth 1"), "\(serve.log)")

        for (name, text) in files(depth: "2") { try directory.write(name, text) }
        #expect(serve.waitForLog("reason=manifest files changed"), "\(serve.log)")
        var status = 0
        for _ in 0..<50 {
            status = try get("client-chain.crt", key: "client.key")
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200, "\(serve.log)")
        // Depth allows it, but the certificate is for servers only.
        #expect(try get("server-only-chain.crt", key: "server-only.key") == 0)
        // The intermediate is not in ca.crt: a client that does not send it has no chain.
        #expect(try get("client.crt", key: "client.key") == 0)
        #expect(serve.terminate() == 0, "\(serve.log)")
    }
}
