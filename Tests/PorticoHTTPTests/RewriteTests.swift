import PorticoHTTP
import PorticoRouting
import Testing

extension PorticoHTTPEngineTests {
    /// ingress-nginx `rewrite-target` and `app-root`.
    @Suite("Rewrites and app-root")
    struct RewriteTests {
        @Test func rewriteTargetsSubstituteCapturesAndKeepTheQuery() throws {
            let rewrite = PathRewrite(pattern: try PathPattern("/something(/|$)(.*)"), target: "/$2")
            #expect(rewrite.apply(to: "/something/new?x=1") == "/new?x=1")
            #expect(rewrite.apply(to: "/something") == "/")
            #expect(rewrite.apply(to: "/something/a/b/") == "/a/b/")
            #expect(rewrite.apply(to: "/elsewhere") == nil)
            // Without groups the whole path is replaced, as nginx's rewrite does.
            let plain = PathRewrite(pattern: try PathPattern("/app"), target: "/")
            #expect(plain.apply(to: "/app/deep/path") == "/")
            // A target with its own query wins; an unknown group is empty; a lone $ stays.
            let query = PathRewrite(pattern: try PathPattern("/(v1)/(.*)"), target: "/$2?from=$1&cost=$")
            #expect(query.apply(to: "/v1/items?page=2") == "/items?from=v1&cost=$")
            #expect(PathRewrite(pattern: try PathPattern("/x"), target: "/$7").apply(to: "/x") == "/")
        }

        @Test func engineRewritesThePathAndRedirectsTheAppRoot() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let path = "/something(/|$)(.*)"
            let routes = RouteTable<HTTPRoute>(
                rules: [
                    RouteRule(
                        host: HostPattern("a.test"),
                        path: path,
                        pathType: .implementationSpecific,
                        target: HTTPRoute(
                            service: "default/a",
                            pool: "a",
                            rewrite: PathRewrite(pattern: try PathPattern(path), target: "/$2")
                        ),
                        regex: true
                    ),
                    RouteRule(
                        host: HostPattern("root.test"),
                        path: "/",
                        pathType: .prefix,
                        target: HTTPRoute(service: "default/a", pool: "a", appRoot: "/app1")
                    ),
                ],
                defaultTarget: nil
            )
            let configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)],
                routes: routes,
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /SOMETHING/new/path?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
                var response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.body.hasPrefix("upstream a GET /new/path?q=1\n"), "\(response.body)")

                try await client.send("GET / HTTP/1.1\r\nHost: root.test:8080\r\n\r\n")
                response = try await client.readResponse()
                #expect(response.status == 302)
                #expect(response.header("location") == "http://root.test:8080/app1")
                // Only "/" itself is redirected.
                try await client.send("GET /app1/page HTTP/1.1\r\nHost: root.test\r\n\r\n")
                response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.body.hasPrefix("upstream a GET /app1/page\n"))
                await client.close()
            }
        }
    }
}
