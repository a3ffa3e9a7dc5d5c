import NIOCore
import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    /// ingress-nginx `auth-url`, `auth-signin`, `auth-response-headers`.
    @Suite("Forward auth")
    struct ForwardAuthTests {
        @Test func authURLsParse() throws {
            let plain = try #require(ForwardAuth(url: "http://auth.example.test/oauth2/auth?x=1"))
            #expect(plain.url == "http://auth.example.test/oauth2/auth?x=1")
            #expect(ForwardAuth(url: "https://[fd00::1]:8443") != nil)
            #expect(ForwardAuth(url: "ftp://auth") == nil)
            #expect(ForwardAuth(url: "http://") == nil)
        }

        @Test func requestsGoUpstreamOnlyWhenTheAuthServiceAgrees() async throws {
            let app = try await TestUpstream.start(name: "app", group: TestSupport.group)
            let auth = try await TestUpstream.start(name: "auth", group: TestSupport.group)
            defer {
                Task {
                    await app.stop()
                    await auth.stop()
                }
            }
            let forwardAuth = try #require(
                ForwardAuth(
                    url: "http://127.0.0.1:\(auth.port)/auth",
                    signin: "https://login.example.test/start",
                    responseHeaders: ["x-auth-user"]
                )
            )
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (nil, "/", HTTPRoute(service: "default/app", pool: "app", forwardAuth: forwardAuth)),
                    (
                        "basic.test", "/",
                        HTTPRoute(
                            service: "default/app",
                            pool: "app",
                            forwardAuth: ForwardAuth(url: "http://127.0.0.1:\(auth.port)/auth")
                        )
                    ),
                    (
                        "down.test", "/",
                        HTTPRoute(
                            service: "default/app",
                            pool: "app",
                            forwardAuth: ForwardAuth(url: "http://127.0.0.1:\(try await TestSupport.deadPort())/auth")
                        )
                    ),
                ]),
                pools: ["app": UpstreamPool(endpoints: [TestSupport.endpoint(app)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                // Allowed: the named auth header reaches the upstream, the others do not.
                try await client.send(
                    "POST /ok HTTP/1.1\r\nHost: app.test\r\nx-auth-user: mallory\r\ncontent-length: 4\r\n\r\nbody"
                )
                var response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.body.hasPrefix("upstream app POST /ok\n"))
                #expect(response.body.contains("\nx-auth-user: alice\n"), "\(response.body)")
                #expect(!response.body.contains("mallory"))
                #expect(!response.body.contains("x-auth-other"))
                // Refused: 403, and nothing reaches the upstream.
                try await client.send("GET /deny HTTP/1.1\r\nHost: app.test\r\n\r\n")
                response = try await client.readResponse()
                #expect(response.status == 403)
                // 401 with auth-signin: a redirect carrying the original URL.
                try await client.send("GET /login?a=1 HTTP/1.1\r\nHost: app.test\r\n\r\n")
                response = try await client.readResponse()
                #expect(response.status == 302)
                #expect(
                    response.header("location")
                        == "https://login.example.test/start?rd=http%3A%2F%2Fapp.test%2Flogin%3Fa%3D1"
                )
                // 401 without auth-signin: passed on with the service's challenge.
                try await client.send("GET /login HTTP/1.1\r\nHost: basic.test\r\n\r\n")
                response = try await client.readResponse()
                #expect(response.status == 401)
                #expect(response.header("www-authenticate") == "Basic realm=\"t\"")
                // Any other answer, or none at all: 500.
                try await client.send("GET /broken HTTP/1.1\r\nHost: app.test\r\n\r\n")
                #expect(try await client.readResponse().status == 500)
                try await client.send("GET /x HTTP/1.1\r\nHost: down.test\r\n\r\n")
                response = try await client.readResponse()
                #expect(response.status == 500)
                #expect(response.body.contains("auth service could not be asked"))
                // The connection is still good.
                try await client.send("GET /again HTTP/1.1\r\nHost: app.test\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                await client.close()
            }
        }
    }
}
