import NIOCore
import NIOPosix
import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    @Suite("Protocol hygiene")
    struct HygieneTests {
        private func configuration(
            _ upstream: TestUpstream,
            limits: HTTPLimits = HTTPLimits(),
            trusted: [IPAddressRange] = [],
            maxBodySize: Int? = 1024
        ) -> HTTPEngineConfiguration {
            HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (nil, "/", HTTPRoute(service: "default/a", pool: "a", maxBodySize: maxBodySize))
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])],
                limits: limits,
                trustedProxies: trusted
            )
        }

        /// Sends `request` on a new connection and returns the response and whether the server closed.
        private func exchange(_ port: Int?, _ request: String) async throws -> (TestResponse, Bool) {
            let client = try await TestSupport.connect(port)
            try await client.send(request)
            let response = try await client.readResponse()
            let closed = response.header("connection") == "close" ? try await client.waitForClose() : false
            await client.close()
            return (response, closed)
        }

        @Test func smugglingAttemptsAreRejectedAndClosed() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let bad = [
                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                    // TRACE has no content: an upstream would read these bytes as a request.
                    "TRACE / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
                    // RFC 9112 3.2: exactly one Host in HTTP/1.1 (routing and upstream would
                    // otherwise read different ones).
                    "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
                    "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
                ]
                for request in bad {
                    let (response, closed) = try await self.exchange(ports[.http], request)
                    #expect(response.status == 400, "\(request.debugDescription)")
                    #expect(closed, "\(request.debugDescription)")
                }
                // A tunnel is not an ingress's job; what follows CONNECT is not HTTP.
                let (response, closed) = try await self.exchange(
                    ports[.http],
                    "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                #expect(response.status == 405)
                #expect(closed)
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 0)
            }
        }

        /// The usual request (HTTP/1.1, nothing the proxy changes) goes upstream with its field
        /// lines as bytes: as sent, without the usual hop-by-hop fields, with the proxy's
        /// forwarding fields, its body framed by its length; the connection stays usable.
        @Test func fieldsPassedAsBytesReachTheUpstreamAsSent() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send(
                    "POST /count HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n"
                        + "Proxy-Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhello"
                        + "GET /echo HTTP/1.1\nHost: app.example\nX-Kept:  yes \nAccept: */*\n\n"
                )
                let count = try await client.readResponse()
                #expect(count.body == "received 5")
                let echo = try await client.readResponse()
                let seen = echo.body
                #expect(seen.hasPrefix("upstream a GET /echo\n"), "\(seen)")
                for name in ["connection:", "keep-alive:", "proxy-connection:"] {
                    #expect(!seen.contains("\n\(name)"), "\(name) reached the upstream")
                }
                #expect(seen.contains("\nx-kept: yes\n"))
                #expect(seen.contains("\naccept: */*\n"))
                #expect(seen.contains("\nx-forwarded-for: 127.0.0.1\n"))
                #expect(seen.contains("\nx-forwarded-host: app.example\n"))
                #expect(seen.contains("\nx-real-ip: 127.0.0.1\n"))
                await client.close()
            }
        }

        @Test func oversizedRequestLineAndHeaderSection() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let longPath = "/" + String(repeating: "a", count: 10_000)
                let (uri, _) = try await self.exchange(ports[.http], "GET \(longPath) HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(uri.status == 414)
                var headers = ""
                for index in 0..<10 {
                    headers += "X-Filler-\(index): \(String(repeating: "b", count: 4000))\r\n"
                }
                let (header, _) = try await self.exchange(ports[.http], "GET / HTTP/1.1\r\nHost: x\r\n\(headers)\r\n")
                #expect(header.status == 431)
            }
        }

        @Test func bodyOverRouteLimitGives413() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream, maxBodySize: 100)) { _, ports in
                let (declared, closed) = try await self.exchange(
                    ports[.http],
                    "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"
                )
                #expect(declared.status == 413)
                #expect(closed)
                let chunk = String(repeating: "z", count: 80)
                let (streamed, _) = try await self.exchange(
                    ports[.http],
                    "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n\(chunk)\r\n50\r\n\(chunk)\r\n0\r\n\r\n"
                )
                #expect(streamed.status == 413)
                let (fits, _) = try await self.exchange(
                    ports[.http],
                    "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n\(String(repeating: "q", count: 100))"
                )
                #expect(fits.body == "received 100")
            }
        }

        @Test func headerReadTimeoutGives408AndIdleConnectionsClose() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let limits = HTTPLimits(headerReadTimeout: .milliseconds(300), idleTimeout: .milliseconds(300))
            try await TestSupport.withEngine(self.configuration(upstream, limits: limits)) { _, ports in
                let slow = try await TestSupport.connect(ports[.http])
                try await slow.send("GET / HTTP/1.1\r\nHost: x\r\n")
                let response = try await slow.readResponse()
                #expect(response.status == 408)
                #expect(try await slow.waitForClose())

                // A connection that sends nothing at all (not even enough to tell HTTP/1.1 from
                // HTTP/2) is closed at the same timeout.
                let silent = try await TestSupport.connect(ports[.http])
                #expect(try await silent.waitForClose())
                let prefix = try await TestSupport.connect(ports[.http])
                try await prefix.send("PRI * HTTP/2")
                #expect(try await prefix.waitForClose())

                let idle = try await TestSupport.connect(ports[.http])
                try await idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await idle.readResponse().status == 200)
                let started = NIODeadline.now()
                #expect(try await idle.waitForClose())
                #expect(NIODeadline.now() - started < .seconds(3))
                #expect(idle.unparsed.isEmpty)
            }
        }

        @Test func hopByHopHeadersAreRemoved() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send(
                    "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                        + "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: foo\r\nX-Kept: yes\r\n\r\n"
                )
                let response = try await client.readResponse()
                let seen = response.body
                for name in [
                    "connection:", "x-secret:", "keep-alive:", "proxy-connection:", "te:", "trailer:", "upgrade:",
                ] {
                    #expect(!seen.contains("\n\(name)"), "\(name) reached the upstream")
                }
                #expect(seen.contains("\nx-kept: yes\n"))
                // The upstream's own hop-by-hop response header does not reach the client.
                #expect(response.header("keep-alive") == nil)
                await client.close()
            }
        }

        @Test func forwardedHeadersReplacedUnlessTrusted() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let spoofed =
                "GET / HTTP/1.1\r\nHost: app.example:8080\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
                + "X-Real-IP: 6.6.6.6\r\n\r\n"
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let (response, _) = try await self.exchange(ports[.http], spoofed)
                let body = response.body
                #expect(body.contains("\nx-forwarded-for: 127.0.0.1\n"))
                #expect(body.contains("\nx-forwarded-proto: http\n"))
                #expect(body.contains("\nx-forwarded-host: app.example:8080\n"))
                #expect(body.contains("\nx-forwarded-port: \(ports[.http]!)\n"))
                #expect(body.contains("\nx-real-ip: 127.0.0.1\n"))
                #expect(!body.contains("6.6.6.6"))
                // HTTP/1.0 may come without Host: a spoofed X-Forwarded-Host goes all the same.
                let (old, _) = try await self.exchange(
                    ports[.http],
                    "GET / HTTP/1.0\r\nX-Forwarded-Host: evil.example\r\n\r\n"
                )
                #expect(old.status == 200)
                #expect(!old.body.contains("evil.example"))
            }
            let trusted = [IPAddressRange("127.0.0.0/8")!]
            try await TestSupport.withEngine(self.configuration(upstream, trusted: trusted)) { _, ports in
                let (response, _) = try await self.exchange(ports[.http], spoofed)
                #expect(response.body.contains("\nx-forwarded-for: 6.6.6.6, 127.0.0.1\n"))
                #expect(response.body.contains("\nx-forwarded-proto: https\n"))
            }
        }

        /// An upstream response in a transfer coding the proxy cannot decode is refused with a
        /// 502 that says so, not passed on relabelled as chunked; the client's next request on
        /// another connection is served.
        @Test func anUpstreamTransferCodingOtherThanChunkedGives502() async throws {
            let coded = try await ScriptedUpstream.start(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n\u{1f}\u{8b}\u{8}\u{0}\r\n0\r\n\r\n"
            )
            defer { Task { try? await coded.close() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/coded", pool: "a"))]),
                pools: [
                    "a": UpstreamPool(endpoints: [UpstreamEndpoint(host: "127.0.0.1", port: coded.localAddress!.port!)])
                ]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                for _ in 0..<2 {
                    let (response, closed) = try await self.exchange(ports[.http], "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    #expect(response.status == 502)
                    #expect(response.body.contains("upstream sent an invalid response"), "\(response.body)")
                    #expect(response.body.contains("Transfer-Encoding"), "\(response.body)")
                    #expect(closed)
                }
            }
        }

        @Test func addressRangesParseAndMatch() {
            #expect(IPAddressRange("10.1.2.3/8")?.description == "10.0.0.0/8")
            #expect(IPAddressRange("fd00::1/8") != nil)
            #expect(IPAddressRange("10.0.0.0/33") == nil)
            #expect(IPAddressRange("nonsense") == nil)
        }
    }
}

/// A TCP server that answers each connection's first read with fixed bytes and keeps it open
/// (or closes it, `close`).
enum ScriptedUpstream {
    static func start(_ response: String, close: Bool = false) async throws -> any Channel {
        try await ServerBootstrap(group: TestSupport.group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Answer(response: response, close: close))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    private final class Answer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let response: String
        let close: Bool
        var answered = false

        init(response: String, close: Bool) {
            self.response = response
            self.close = close
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !self.answered else { return }
            self.answered = true
            context.writeAndFlush(NIOAny(ByteBuffer(string: self.response)), promise: nil)
            if self.close { context.close(promise: nil) }
        }
    }
}
