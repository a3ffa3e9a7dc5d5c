import Foundation
import Testing

/// `portico serve` driven over real sockets with curl, against a real upstream.
@Suite(.serialized) struct ServeTests {
    static func indent(_ text: String, _ spaces: Int) -> String {
        text.split(separator: "\n").map { String(repeating: " ", count: spaces) + $0 }.joined(separator: "\n")
    }

    /// Manifests: a front on 127.0.0.1, `app.example.test` routed to the upstream with TLS,
    /// `empty.example.test` routed to a Service without endpoints.
    static func manifests(
        http: Int,
        https: Int,
        upstream: Int,
        certificate: (String, String)?,
        route: String = "/"
    )
        -> [String: String]
    {
        // Without a certificate the https port serves Portico's self-signed default.
        let secret =
            certificate.map {
                """

                ---
                apiVersion: v1
                kind: Secret
                metadata: {name: app-tls}
                type: kubernetes.io/tls
                stringData:
                  tls.crt: |
                \(indent($0.0, 4))
                  tls.key: |
                \(indent($0.1, 4))
                """
            } ?? ""
        let tls = certificate == nil ? "" : "\n  tls: [{hosts: [app.example.test], secretName: app-tls}]"
        return [
            "front.yaml": """
            apiVersion: networking.k8s.io/v1
            kind: IngressClass
            metadata: {name: portico}
            spec: {controller: portico.dev/ingress}
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: front
              annotations:
                portico.dev/ingress-class: portico
                metallb.io/loadBalancerIPs: 127.0.0.1
            spec:
              type: LoadBalancer
              ports:
              - {name: http, port: \(http)}
              - {name: https, port: \(https)}
            """,
            "app.yaml": """
            apiVersion: v1
            kind: Service
            metadata: {name: app}
            spec: {ports: [{name: web, port: 80}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: app-1
              labels: {kubernetes.io/service-name: app}
            addressType: IPv4
            endpoints: [{addresses: [127.0.0.1]}]
            ports: [{name: web, port: \(upstream)}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: empty}
            spec: {ports: [{name: web, port: 80}]}\(secret)
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: app
              annotations: {nginx.ingress.kubernetes.io/ssl-redirect: "false"}
            spec:
              ingressClassName: portico\(tls)
              rules:
              - host: app.example.test
                http:
                  paths:
                  - {path: \(route), pathType: Prefix, backend: {service: {name: app, port: {name: web}}}}
              - host: empty.example.test
                http:
                  paths:
                  - {path: /, pathType: Prefix, backend: {service: {name: empty, port: {number: 80}}}}
            """,
        ]
    }

    /// `portico serve` on ``manifests(http:https:upstream:certificate:route:)`` with a
    /// certificate for `app.example.test`, ready; and its upstream, ports and manifests.
    static func start() async throws -> (
        upstream: TestUpstream, http: Int, https: Int, admin: Int, certificate: (String, String),
        directory: ManifestDirectory, serve: ServeProcess
    ) {
        let upstream = try await TestUpstream(name: "app")
        let (http, https, admin) = (freePort(), freePort(), freePort())
        let certificate = try makeCertificate(names: ["app.example.test"])
        let directory = try ManifestDirectory(
            Self.manifests(http: http, https: https, upstream: upstream.port, certificate: certificate)
        )
        let serve = try ServeProcess(arguments: [directory.path], adminPort: admin)
        try serve.waitUntilReady()
        return (upstream, http, https, admin, certificate, directory, serve)
    }

    @Test func servesRoutesTLSReloadsAndDrains() async throws {
        let (upstream, http, https, admin, certificate, directory, serve) = try await Self.start()
        defer { Task { await upstream.close() } }

        // Routed by Host, path unchanged, X-Forwarded-* added.
        var response = try Curl.get("http://127.0.0.1:\(http)/some/path?q=1", ["-H", "Host: app.example.test"])
        #expect(response.status == 200, "\(response)\n\(serve.log)")
        #expect(response.body == "upstream app: GET /some/path?q=1\n")
        #expect(response.headers["x-seen-x-forwarded-for"] == "127.0.0.1")
        #expect(response.headers["x-seen-x-forwarded-proto"] == "http")

        // No route: 404 saying so. A Service without endpoints: 503.
        response = try Curl.get("http://127.0.0.1:\(http)/", ["-H", "Host: nowhere.example.test"])
        #expect(response.status == 404)
        response = try Curl.get("http://127.0.0.1:\(http)/", ["-H", "Host: empty.example.test"])
        #expect(response.status == 503)

        // TLS: the certificate is chosen by SNI, the route by Host.
        response = try Curl.get(
            "https://app.example.test:\(https)/tls",
            ["--resolve", "app.example.test:\(https):127.0.0.1", "--cacert", "/dev/null", "--insecure"]
        )
        #expect(response.status == 200, "\(response)")
        #expect(response.body == "upstream app: GET /tls\n")
        #expect(response.headers["x-seen-x-forwarded-proto"] == "https")

        // A broken manifest is refused; the old configuration keeps serving.
        try directory.write("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [oops\n")
        #expect(serve.waitForLog("reload refused"), "\(serve.log)")
        response = try Curl.get("http://127.0.0.1:\(http)/still", ["-H", "Host: app.example.test"])
        #expect(response.status == 200)
        let metrics = try Curl.get("http://127.0.0.1:\(admin)/metrics")
        #expect(metrics.body.contains("portico_config_reloads_total{result=\"invalid\"} 1"), "\(metrics.body)")
        // Requests by Ingress, Service and status class: three answered by the app, the 503 of
        // the Service without endpoints, the 404 that matched no Ingress.
        let requests = metrics.body.split(separator: "\n").filter { $0.hasPrefix("portico_http_requests_total{") }
        func count(_ ingress: String, _ service: String, _ status: String) -> String? {
            let labels = ["ingress=\"\(ingress)\"", "service=\"\(service)\"", "status=\"\(status)\""]
            return requests.first { line in labels.allSatisfy { line.contains($0) } }.map {
                String($0.split(separator: " ").last ?? "")
            }
        }
        #expect(count("default/app", "default/app", "2xx") == "3", "\(requests)")
        #expect(count("default/app", "default/empty", "5xx") == "1", "\(requests)")
        #expect(count("", "", "4xx") == "1", "\(requests)")

        // A valid change applies: only /api is routed now.
        try FileManager.default.removeItem(at: directory.url.appendingPathComponent("broken.yaml"))
        for (name, text) in Self.manifests(
            http: http,
            https: https,
            upstream: upstream.port,
            certificate: certificate,
            route: "/api"
        ) {
            try directory.write(name, text)
        }
        #expect(serve.waitForLog("reason=manifest files changed"), "\(serve.log)")
        var routed = false
        for _ in 0..<50 {
            response = try Curl.get("http://127.0.0.1:\(http)/other", ["-H", "Host: app.example.test"])
            if response.status == 404 {
                routed = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(routed, "\(serve.log)")
        response = try Curl.get("http://127.0.0.1:\(http)/api/x", ["-H", "Host: app.example.test"])
        #expect(response.status == 200)

        // /plan serves the JSON contract.
        let plan = try Curl.get("http://127.0.0.1:\(admin)/plan")
        #expect(plan.body.contains("\"pathType\" : \"Prefix\""))

        // SIGTERM: graceful exit with status 0.
        #expect(serve.terminate() == 0, "\(serve.log)")
    }

    /// HTTP/2 with curl: over TLS (ALPN h2) and h2c with prior knowledge, a 1 MiB upload
    /// (more than one flow-control window), and 20 requests multiplexed on one connection.
    @Test func servesHTTP2ToCurl() async throws {
        let (upstream, http, https, _, _, directory, serve) = try await Self.start()
        defer { Task { await upstream.close() } }
        let tls = ["--http2", "--resolve", "app.example.test:\(https):127.0.0.1"]

        var response = try Curl.get("https://app.example.test:\(https)/h2", tls)
        #expect(response.status == 200, "\(response)\n\(serve.log)")
        #expect(response.body == "upstream app: GET /h2\n")
        #expect(response.headers["x-seen-x-forwarded-proto"] == "https")

        response = try Curl.get(
            "http://127.0.0.1:\(http)/h2c",
            ["--http2-prior-knowledge", "-H", "Host: app.example.test"]
        )
        #expect(response.status == 200, "\(response)")
        #expect(response.body == "upstream app: GET /h2c\n")

        let upload = FileManager.default.temporaryDirectory.appendingPathComponent(
            "portico-upload-\(UUID().uuidString)"
        )
        try Data(repeating: 0x75, count: 1 << 20).write(to: upload)
        defer { try? FileManager.default.removeItem(at: upload) }
        response = try Curl.get(
            "https://app.example.test:\(https)/upload",
            tls + ["--data-binary", "@\(upload.path)", "-H", "Content-Type: application/octet-stream"]
        )
        #expect(response.status == 200, "\(response)")
        #expect(response.body == "upstream app: POST /upload\n")

        // Each URL with its own `-o` (one applies to one URL).
        let outputs = (0..<20).flatMap { ["-o", "/dev/null", "https://app.example.test:\(https)/multiplexed/\($0)"] }
        let multiplexed = try ChildProcess.run(
            ["curl", "-s", "-k", "--max-time", "20", "-Z", "--parallel-max", "20"] + tls
                + ["-w", "%{http_version} %{response_code} %{num_connects}\\n"] + outputs
        ).output
        let lines = multiplexed.split(separator: "\n")
        #expect(lines.count == 20, "\(multiplexed)")
        #expect(lines.allSatisfy { $0.hasPrefix("2 200 ") }, "\(multiplexed)")
        // One TLS connection carried them all (curl reports the one that connected).
        #expect(lines.filter { $0.hasSuffix(" 1") }.count == 1, "\(multiplexed)")
        #expect(serve.terminate() == 0, "\(serve.log)")
        withExtendedLifetime(directory) {}  // the manifests stay until the process ended
    }

    @Test func invalidManifestsRefuseToStart() throws {
        let directory = try ManifestDirectory(["bad.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: Bad}\n"])
        let serve = try ServeProcess(arguments: [directory.path], adminPort: freePort())
        #expect(serve.process.wait() == 1)
        #expect(serve.log.contains("metadata.name: \"Bad\""))
        #expect(serve.log.contains("nothing was started"))
    }
}
