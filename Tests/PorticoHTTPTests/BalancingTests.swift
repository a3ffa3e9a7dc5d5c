import NIOCore
import PorticoRouting
import Testing

@testable import PorticoHTTP

extension PorticoHTTPEngineTests {
    /// Least requests, passive ejection with recovery, and cookie affinity.
    @Suite("Load balancing")
    struct BalancingTests {
        private let endpoints = (1...3).map { UpstreamEndpoint(host: "10.0.0.\($0)", port: 80) }
        private let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

        @Test func plainRoundRobinNeedsNoOrder() {
            let health = EndpointHealth()
            #expect(
                health.order(self.endpoints, start: 1, balancing: .roundRobin, preferred: nil, now: self.now) == nil
            )
        }

        @Test func leastRequestsPrefersIdleEndpointsAndKeepsRoundRobinTies() {
            var health = EndpointHealth()
            health.started(self.endpoints[0])
            health.started(self.endpoints[0])
            health.started(self.endpoints[2])
            #expect(
                health.order(self.endpoints, start: 0, balancing: .leastRequests, preferred: nil, now: self.now) == [
                    1, 2, 0,
                ]
            )
            health.finished(self.endpoints[0])
            health.finished(self.endpoints[0])
            // Ties (0 and 1 idle) follow the round-robin start.
            #expect(
                health.order(self.endpoints, start: 1, balancing: .leastRequests, preferred: nil, now: self.now) == [
                    1, 0, 2,
                ]
            )
        }

        @Test func ejectedEndpointsGoLastAndComeBackWithBackoff() {
            var health = EndpointHealth()
            health.connectFailed(self.endpoints[0], now: self.now)
            #expect(
                health.order(self.endpoints, start: 0, balancing: .roundRobin, preferred: nil, now: self.now) == [
                    1, 2, 0,
                ]
            )
            // After one second the endpoint is tried normally again (the probe).
            let later = self.now + .milliseconds(1001)
            #expect(
                health.order(self.endpoints, start: 0, balancing: .roundRobin, preferred: nil, now: later) == [0, 1, 2]
            )
            // A second consecutive failure ejects it for two seconds.
            health.connectFailed(self.endpoints[0], now: later)
            #expect(health.isEjected(self.endpoints[0], now: later + .milliseconds(1500)))
            #expect(!health.isEjected(self.endpoints[0], now: later + .milliseconds(2001)))
            // A success clears the history.
            health.connectSucceeded(self.endpoints[0])
            #expect(!health.hasEjections)
        }

        @Test func affinityPrefersTheCookiesEndpointUnlessEjected() {
            var health = EndpointHealth()
            #expect(
                health.order(self.endpoints, start: 0, balancing: .roundRobin, preferred: 2, now: self.now) == [
                    2, 0, 1,
                ]
            )
            health.connectFailed(self.endpoints[2], now: self.now)
            #expect(
                health.order(self.endpoints, start: 0, balancing: .roundRobin, preferred: 2, now: self.now) == [
                    0, 1, 2,
                ]
            )
        }

        @Test func failingEndpointIsEjectedSoNonIdempotentRequestsStopFailing() async throws {
            let live = try await TestUpstream.start(name: "live", group: TestSupport.group)
            defer { Task { await live.stop() } }
            let dead = UpstreamEndpoint(host: "127.0.0.1", port: try await TestSupport.deadPort())
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/mixed", pool: "mixed"))]),
                pools: ["mixed": UpstreamPool(endpoints: [dead, TestSupport.endpoint(live)])],
                // Long enough that a slow, loaded test machine cannot outlast it.
                limits: HTTPLimits(ejectionTime: .seconds(60))
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                // POST is not retried: without ejection every other one would be a 502.
                var statuses: [Int] = []
                for _ in 0..<8 {
                    try await client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
                    statuses.append(try await client.readResponse().status)
                }
                #expect(statuses.filter { $0 == 502 }.count <= 1, "\(statuses)")
                #expect(statuses.suffix(6).allSatisfy { $0 == 200 }, "\(statuses)")
                await client.close()
            }
        }

        @Test func cookieAffinityKeepsAClientOnOneEndpoint() async throws {
            let upstreams = [
                try await TestUpstream.start(name: "a", group: TestSupport.group),
                try await TestUpstream.start(name: "b", group: TestSupport.group),
                try await TestUpstream.start(name: "c", group: TestSupport.group),
            ]
            defer { Task { for upstream in upstreams { await upstream.stop() } } }
            let route = HTTPRoute(
                service: "default/app",
                pool: "app",
                affinity: CookieAffinity(name: "route", path: "/app", maxAge: 3600)
            )
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", route)]),
                pools: ["app": UpstreamPool(endpoints: upstreams.map(TestSupport.endpoint))]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                var response = try await client.readResponse()
                let setCookie = try #require(response.header("set-cookie"))
                #expect(setCookie.hasSuffix("; Path=/app; HttpOnly; Max-Age=3600"), "\(setCookie)")
                let cookie = String(setCookie.prefix { $0 != ";" })
                let first = response.header("x-upstream")
                for _ in 0..<6 {
                    try await client.send("GET / HTTP/1.1\r\nHost: x\r\nCookie: other=1; \(cookie)\r\n\r\n")
                    response = try await client.readResponse()
                    #expect(response.header("x-upstream") == first)
                    #expect(response.header("set-cookie") == nil)
                }
                // A cookie naming no endpoint is replaced.
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\nCookie: route=0000000000000000\r\n\r\n")
                response = try await client.readResponse()
                #expect(response.header("set-cookie")?.hasPrefix("route=") == true)
                await client.close()
            }
        }
    }
}

extension PorticoHTTPEngineTests {
    @Suite("Active health checks")
    struct HealthCheckTests {
        /// The upstream names answering a few requests in a row.
        private func upstreamsSeen(_ client: RawClient, requests: Int) async throws -> Set<String> {
            var seen: Set<String> = []
            for _ in 0..<requests {
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                let response = try await client.readResponse()
                if let name = response.header("x-upstream") { seen.insert(name) }
            }
            return seen
        }

        @Test func failingEndpointIsTriedLastUntilItPassesAgain() async throws {
            let healthy = try await TestUpstream.start(name: "hc-a", group: TestSupport.group)
            let sick = try await TestUpstream.start(name: "hc-b", group: TestSupport.group)
            defer {
                _ = sickUpstreams.withLockedValue { $0.remove("hc-b") }
                Task {
                    await healthy.stop()
                    await sick.stop()
                }
            }
            sickUpstreams.withLockedValue { _ = $0.insert("hc-b") }
            let check = HealthCheck(kind: .http(path: "/healthz"), interval: .milliseconds(50))
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/app", pool: "app"))]),
                pools: [
                    "app": UpstreamPool(
                        endpoints: [TestSupport.endpoint(healthy), TestSupport.endpoint(sick)],
                        healthCheck: check
                    )
                ]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                // Two failed probes take hc-b out (50 ms apart); wait for it.
                var seen: Set<String> = ["hc-b"]
                for _ in 0..<40 where seen.contains("hc-b") {
                    try await Task.sleep(for: .milliseconds(50))
                    seen = try await self.upstreamsSeen(client, requests: 4)
                }
                #expect(seen == ["hc-a"], "the failing endpoint still gets requests")
                // It passes again: back in the rotation.
                sickUpstreams.withLockedValue { _ = $0.remove("hc-b") }
                for _ in 0..<40 where seen == ["hc-a"] {
                    try await Task.sleep(for: .milliseconds(50))
                    seen = try await self.upstreamsSeen(client, requests: 4)
                }
                #expect(seen == ["hc-a", "hc-b"])
                await client.close()
            }
        }
    }
}
