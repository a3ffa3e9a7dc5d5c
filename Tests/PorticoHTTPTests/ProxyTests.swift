import MetricsTestKit
import NIOCore
import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    @Suite("HTTP/1.1 proxying")
    struct ProxyTests {
        @Test func keepAliveAndPipelinedRequestsAnsweredInOrder() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let route = HTTPRoute(service: "default/a", pool: "a")
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(Optional("x"), "/", route)]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send(
                    "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                for path in ["/one", "/two", "/three"] {
                    let response = try await client.readResponse()
                    #expect(response.status == 200)
                    #expect(response.body.hasPrefix("upstream a GET \(path)\n"))
                }
                // A body, a local 404 and a chunked request inside one pipelined burst.
                try await client.send(
                    "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                        + "GET /lost HTTP/1.1\r\nHost: elsewhere\r\n\r\n"
                        + "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                        + "GET /last HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                #expect(try await client.readResponse().body == "received 3")
                #expect(try await client.readResponse().status == 404)
                #expect(try await client.readResponse().body == "received 2")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /last\n"))
                try await client.send("GET /four HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /four\n"))
                await client.close()
                // Keep-alive on both sides: one upstream connection served all four (with the
                // fast lane, one for the GETs it served and one for the engine's requests).
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == (TestSupport.fastLane ? 2 : 1))
            }
        }

        @Test func contentLengthAndChunkedBodiesBothWays() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a"))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
                #expect(try await client.readResponse().body == "received 10")
                try await client.send(
                    "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                )
                #expect(try await client.readResponse().body == "received 11")
                try await client.send("GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
                let chunked = try await client.readResponse()
                #expect(chunked.chunked)
                #expect(chunked.body == "one,two,three")
                await client.close()
            }
        }

        @Test func fiftyMegabyteBodiesStreamWithBoundedMemory() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a", maxBodySize: nil))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            let total = (Int(ProcessInfoLite.environment("BIG_MB") ?? "50") ?? 50) * 1024 * 1024
            try await TestSupport.withEngine(configuration) { _, ports in
                let before = TestSupport.residentBytes()
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: \(total)\r\n\r\n")
                let chunk = ByteBuffer(repeating: UInt8(ascii: "y"), count: 256 * 1024)
                for _ in 0..<(total / chunk.readableBytes) {
                    try await client.send(chunk)
                }
                #expect(try await client.readResponse().body == "received \(total)")

                try await client.send("GET /download?n=\(total) HTTP/1.1\r\nHost: x\r\n\r\n")
                let download = try await client.readResponse(keepBody: false)
                #expect(download.status == 200)
                #expect(download.bodyLength == total)
                let grown = TestSupport.residentBytes() - before
                // Upstream, proxy and client share this process; a buffered body would add >= 50 MB.
                #expect(grown < 40 * 1024 * 1024, "resident memory grew by \(grown) bytes")
                await client.close()
            }
        }

        @Test func connectionCloseIsHonoured() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a"))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("connection") == "close")
                #expect(try await client.waitForClose())
            }
        }

        @Test func roundRobinAcrossEndpointsAndPathUnchanged() async throws {
            let first = try await TestUpstream.start(name: "first", group: TestSupport.group)
            let second = try await TestUpstream.start(name: "second", group: TestSupport.group)
            defer {
                Task {
                    await first.stop()
                    await second.stop()
                }
            }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a"))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(first), TestSupport.endpoint(second)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                var seen: [String] = []
                for _ in 0..<4 {
                    try await client.send("GET /a/../b%20c//d?q=1&r=%2F HTTP/1.1\r\nHost: x\r\n\r\n")
                    let response = try await client.readResponse()
                    seen.append(response.header("x-upstream") ?? "")
                    #expect(response.body.contains("GET /a/../b%20c//d?q=1&r=%2F\n"))
                }
                #expect(Set(seen) == ["first", "second"])
                #expect(seen[0] != seen[1] && seen[1] != seen[2] && seen[2] != seen[3])
                await client.close()
            }
        }

        @Test func connectFailureRetriesIdempotentElse502() async throws {
            let live = try await TestUpstream.start(name: "live", group: TestSupport.group)
            defer { Task { await live.stop() } }
            let dead = UpstreamEndpoint(host: "127.0.0.1", port: try await TestSupport.deadPort())
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (nil, "/dead", HTTPRoute(service: "default/dead", pool: "dead")),
                    (nil, "/", HTTPRoute(service: "default/mixed", pool: "mixed")),
                ]),
                pools: [
                    "mixed": UpstreamPool(endpoints: [dead, TestSupport.endpoint(live)]),
                    "dead": UpstreamPool(endpoints: [dead]),
                ]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                for _ in 0..<4 {
                    try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    #expect(try await client.readResponse().status == 200)
                }
                try await client.send("POST /dead HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
                let failed = try await client.readResponse()
                #expect(failed.status == 502)
                #expect(failed.body.contains("upstream connect failed for service \"default/dead\""))
                // The connection is read again after a 502 (the read withheld while connecting).
                try await client.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                await client.close()
            }
        }

        @Test func upstreamTimeoutGives504() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let route = HTTPRoute(service: "default/a", pool: "a", readTimeout: .milliseconds(300))
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", route)]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 504)
                #expect(response.body.contains("upstream timed out for service \"default/a\""))
                // The connection stays usable.
                try await client.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                await client.close()
            }
        }

        @Test func sendTimeoutAppliesWhileTheRequestIsBeingSent() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            // A long read timeout: only the send timeout can end this exchange within the test's limit.
            let route = HTTPRoute(
                service: "default/a",
                pool: "a",
                readTimeout: .seconds(20),
                sendTimeout: .milliseconds(300)
            )
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", route)]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                // 10 of the 1000 announced body bytes, then nothing more to write upstream.
                try await client.send("POST /count HTTP/1.1\r\nHost: x\r\ncontent-length: 1000\r\n\r\n0123456789")
                let response = try await client.readResponse()
                #expect(response.status == 504)
                #expect(response.body.contains("(proxy-send-timeout)"), "\(response.body)")
                await client.close()
            }
        }

        @Test func noRoute404AndNoEndpoints503() async throws {
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (Optional("empty.example"), "/", HTTPRoute(service: "web/empty", pool: "empty"))
                ]),
                pools: ["empty": UpstreamPool(endpoints: [])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /y HTTP/1.1\r\nHost: x\r\n\r\n")
                let missing = try await client.readResponse()
                #expect(missing.status == 404)
                #expect(missing.body == "no route for host \"x\" path \"/y\"\n")
                try await client.send("GET / HTTP/1.1\r\nHost: empty.example\r\n\r\n")
                let empty = try await client.readResponse()
                #expect(empty.status == 503)
                #expect(empty.body.contains("no endpoints available for service \"web/empty\""))
                await client.close()
            }
        }

        @Test func staleKeepAliveConnectionIsReplacedForIdempotentRequests() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a"))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /drop-next HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                // The pooled connection is closed by the upstream when this request reaches it.
                try await client.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.body.hasPrefix("upstream a GET /again\n"))
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 2)
                await client.close()
            }
        }

        @Test func headRequestsAndHTTP10Clients() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a"))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
                let head = try await client.readResponse(headRequest: true)
                #expect(head.status == 200)
                #expect(head.header("content-length") != nil)
                let get = try await client.readResponse()
                #expect(get.body.hasPrefix("upstream a GET /g\n"))
                await client.close()

                let old = try await TestSupport.connect(ports[.http])
                try await old.send("GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n")
                let response = try await old.readResponse()
                #expect(response.status == 200)
                #expect(response.header("transfer-encoding") == nil)
                #expect(response.body == "one,two,three")
                #expect(old.sawEOF)
            }
        }

        @Test func metricsCountRequestsByIngressServiceAndStatusClass() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let dead = UpstreamEndpoint(host: "127.0.0.1", port: try await TestSupport.deadPort())
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (Optional("a"), "/", HTTPRoute(service: "default/a", ingress: "default/web", pool: "a")),
                    (Optional("dead"), "/", HTTPRoute(service: "default/dead", ingress: "default/web", pool: "dead")),
                ]),
                pools: [
                    "a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)]),
                    "dead": UpstreamPool(endpoints: [dead]),
                ]
            )
            let metrics = TestMetrics()
            try await TestSupport.withEngine(configuration, metrics: metrics) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                for host in ["a", "a", "nowhere", "dead"] {
                    try await client.send("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
                    _ = try await client.readResponse()
                }
                let requests = "portico_http_requests_total"
                #expect(
                    metrics.counterTotal(
                        label: requests,
                        dimensions: [("ingress", "default/web"), ("service", "default/a"), ("status", "2xx")]
                    ) == 2
                )
                #expect(
                    metrics.counterTotal(
                        label: requests,
                        dimensions: [("ingress", ""), ("service", ""), ("status", "4xx")]
                    )
                        == 1
                )
                #expect(
                    metrics.counterTotal(label: requests, dimensions: [("service", "default/dead"), ("status", "5xx")])
                        == 1
                )
                #expect(
                    metrics.counterTotal(
                        label: "portico_http_upstream_errors_total",
                        dimensions: [("service", "default/dead"), ("reason", "connect")]
                    ) == 1
                )
                let open = try metrics.expectMeter("portico_http_open_connections")
                #expect(open.lastValue == 1)
                await client.close()
            }
        }
    }
}
