import NIOCore
import Testing

@testable import PorticoHTTP

extension PorticoHTTPEngineTests {
    /// ingress-nginx `limit-rps`, `limit-rpm`, `limit-connections`, `limit-whitelist`.
    @Suite("Rate limits")
    struct RateLimitTests {
        private let alice: [UInt8] = [10, 0, 0, 1]
        private let bob: [UInt8] = [10, 0, 0, 2]
        private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

        @Test func burstOfFiveTimesTheRateThenTheRate() {
            let limiter = RateLimiter()
            let limit = RateLimit(id: "default/app", requestsPerSecond: 2)
            // Burst: 5 x 2 requests at once.
            for _ in 0..<10 { #expect(limiter.admit(limit, address: self.alice, now: self.start) == .allowed) }
            #expect(
                limiter.admit(limit, address: self.alice, now: self.start) == .tooManyRequests("2 requests per second")
            )
            // Another client has its own bucket.
            #expect(limiter.admit(limit, address: self.bob, now: self.start) == .allowed)
            // Half a second later, one token has come back (2 per second), and only one.
            let later = self.start + .milliseconds(500)
            #expect(limiter.admit(limit, address: self.alice, now: later) == .allowed)
            #expect(limiter.admit(limit, address: self.alice, now: later) != .allowed)
        }

        @Test func perMinuteLimitAndSharedCountersPerId() {
            let limiter = RateLimiter()
            let limit = RateLimit(id: "default/app", requestsPerMinute: 1)
            for _ in 0..<5 { #expect(limiter.admit(limit, address: self.alice, now: self.start) == .allowed) }
            #expect(limiter.admit(limit, address: self.alice, now: self.start + .seconds(30)) != .allowed)
            #expect(limiter.admit(limit, address: self.alice, now: self.start + .seconds(61)) == .allowed)
            // Another Ingress's limit counts separately.
            let other = RateLimit(id: "default/other", requestsPerMinute: 1)
            #expect(limiter.admit(other, address: self.alice, now: self.start + .seconds(61)) == .allowed)
        }

        @Test func connectionSlotsAreTakenAndGivenBack() {
            let limiter = RateLimiter()
            let limit = RateLimit(id: "default/app", connections: 2)
            #expect(limiter.admit(limit, address: self.alice) == .allowed)
            #expect(limiter.admit(limit, address: self.alice) == .allowed)
            #expect(limiter.admit(limit, address: self.alice) == .tooManyConnections)
            limiter.release(limit, address: self.alice)
            #expect(limiter.admit(limit, address: self.alice) == .allowed)
            limiter.release(limit, address: self.alice)
            limiter.release(limit, address: self.alice)
            #expect(limiter.trackedClients == 0)
        }

        @Test func exemptClientsAreNotCounted() throws {
            let limiter = RateLimiter()
            let range = try #require(IPAddressRange("10.0.0.0/24"))
            let limit = RateLimit(id: "default/app", requestsPerSecond: 1, exempt: [range])
            for _ in 0..<100 { #expect(limiter.admit(limit, address: self.alice, now: self.start) == .allowed) }
            #expect(limiter.trackedClients == 0)
        }

        @Test func memoryIsBoundedUnderAnAddressScan() {
            let limiter = RateLimiter(maxClients: 100)
            let limit = RateLimit(id: "default/app", requestsPerSecond: 1)
            for index in 0..<10_000 {
                let address: [UInt8] = [10, UInt8(index >> 16 & 0xff), UInt8(index >> 8 & 0xff), UInt8(index & 0xff)]
                _ = limiter.admit(limit, address: address, now: self.start)
            }
            #expect(limiter.trackedClients <= 101)
            // Once the buckets have refilled, a sweep forgets them and new clients get their own again.
            #expect(limiter.admit(limit, address: [192, 168, 0, 1], now: self.start + .seconds(6)) == .allowed)
            #expect(limiter.trackedClients <= 2)
        }

        @Test func engineAnswers429OverTheLimit() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)],
                routes: TestSupport.routes([
                    (
                        nil, "/",
                        HTTPRoute(
                            service: "default/a",
                            pool: "a",
                            rateLimit: RateLimit(id: "default/a", requestsPerMinute: 1, connections: 1)
                        )
                    )
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                // One request in progress (the upstream never answers /slow): a second one at once is refused.
                let slow = try await TestSupport.connect(ports[.http])
                try await slow.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
                try await Task.sleep(for: .milliseconds(100))
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                var response = try await client.readResponse()
                #expect(response.status == 429)
                #expect(response.body.contains("requests in progress already"))
                // Its slot comes back when the slow exchange's connection goes away.
                await slow.close()
                try await Task.sleep(for: .milliseconds(100))
                // 5 requests per minute pass (the burst; the /slow request took one), the next is refused.
                var statuses: [Int] = []
                for _ in 0..<5 {
                    try await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                    response = try await client.readResponse()
                    statuses.append(response.status)
                }
                #expect(statuses == [200, 200, 200, 200, 429], "\(statuses)")
                #expect(response.body.contains("over the limit of 1 requests per minute"))
                await client.close()
            }
        }
    }
}
