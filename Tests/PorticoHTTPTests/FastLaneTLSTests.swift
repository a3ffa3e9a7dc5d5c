#if os(Linux)
import Glibc
import MetricsTestKit
import NIOCore
import NIOEmbedded
import NIOSSL
@testable import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    /// TLS on the fast lane (LaneTLS.swift, HTTPFastLane.swift "TLS clients"): the lane peeks
    /// at the ClientHello, terminates TLS itself for HTTP/1.1 clients, hands `h2` clients and
    /// client-certificate names to the engine untouched, and relays the decrypted bytes of a
    /// connection whose request it does not serve to the engine over a socket pair.
    @Suite("Fast lane TLS")
    struct FastLaneTLSTests {
        private static let exactName = "a.example.com"

        private func configuration(_ upstream: TestUpstream) -> HTTPEngineConfiguration {
            HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)],
                certificates: [
                    TLSCertificate(
                        serverNames: [Self.exactName],
                        certificateChainPEM: TestCertificates.exactCertificate,
                        privateKeyPEM: TestCertificates.exactKey
                    )
                ],
                defaultCertificate: TLSCertificate(
                    serverNames: [],
                    certificateChainPEM: TestCertificates.defaultCertificate,
                    privateKeyPEM: TestCertificates.defaultKey
                ),
                // ssl-redirect, as every route of an Ingress with TLS has by default: it
                // redirects plain HTTP only, so over TLS these routes are the lane's.
                routes: TestSupport.routes([
                    (nil, "/", HTTPRoute(service: "default/a", pool: "a", sslRedirect: true)),
                    (
                        "small.example.com", "/",
                        HTTPRoute(service: "default/a", pool: "a", sslRedirect: true, maxBodySize: 1024)
                    ),
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
        }

        private static func statistics(_ engine: HTTPEngine) -> HTTPFastLane.Statistics {
            engine.fastLaneStatistics.reduce(into: HTTPFastLane.Statistics()) { total, lane in
                total.served += lane.served
                total.handedOver += lane.handedOver
                total.tlsHandshakes += lane.tlsHandshakes
                total.relayed += lane.relayed
                total.clients += lane.clients
                total.relays += lane.relays
                total.http2Connections += lane.http2Connections
            }
        }

        /// TLS handshakes counted with `result` (`succeeded`, `failed`).
        private static func handshakes(_ metrics: TestMetrics, _ result: String) -> Int64 {
            metrics.counterTotal(label: "portico_http_tls_handshakes_total", dimensions: [("result", result)])
        }

        /// The lane's statistics once neither it nor the engine holds a connection (or after
        /// `seconds`).
        private static func settled(_ engine: HTTPEngine, seconds: Double = 1) async throws -> HTTPFastLane.Statistics {
            var open = Self.statistics(engine)
            for _ in 0..<Int(seconds * 100) where open.relays > 0 || open.clients > 0 || engine.openConnections > 0 {
                try await Task.sleep(nanoseconds: 10_000_000)
                open = Self.statistics(engine)
            }
            return open
        }

        private static func clientContext(protocols: [String]) throws -> NIOSSLContext {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            tls.applicationProtocols = protocols
            return try NIOSSLContext(configuration: tls)
        }

        private static func connect(
            _ port: Int?,
            protocols: [String] = ["http/1.1"],
            serverName: String? = Self.exactName
        ) async throws -> RawClient {
            try await RawClient.connect(
                port: port!,
                group: TestSupport.group,
                tls: try Self.clientContext(protocols: protocols),
                serverName: serverName
            )
        }

        /// An HTTP/1.1 client over TLS is answered as by the engine (the certificate by SNI,
        /// `x-forwarded-proto: https`, the TLS port), with or without the lane; with it, the
        /// lane made the handshake and answered, and the handshake is counted either way.
        @Test(arguments: [false, true])
        func http1OverTLS(fastLane: Bool) async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let metrics = TestMetrics()
            try await TestSupport.withEngine(self.configuration(upstream), metrics: metrics, fastLane: fastLane) {
                engine,
                ports in
                let client = try await Self.connect(ports[.https])
                try await client.send(
                    "GET /one HTTP/1.1\r\nHost: a.example.com\r\n\r\nHEAD /two HTTP/1.1\r\nHost: a.example.com\r\n\r\n"
                )
                let one = try await client.readResponse()
                #expect(one.status == 200)
                #expect(one.body.hasPrefix("upstream a GET /one\n"))
                for line in ["x-forwarded-proto: https", "x-forwarded-port: \(ports[.https]!)", "x-real-ip: 127.0.0.1"]
                {
                    #expect(one.body.contains("\n\(line)\n"), "\(line)")
                }
                let two = try await client.readResponse(headRequest: true)
                #expect(two.status == 200 && two.body.isEmpty)
                // Larger than the socket and TLS buffers: partial writes and backpressure.
                try await client.send("GET /download?n=3000000 HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                let download = try await client.readResponse(keepBody: false)
                #expect(download.status == 200 && download.bodyLength == 3_000_000)
                let channel = client.channel.channel
                let leaf = try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
                }.get()
                let exact = try NIOSSLCertificate(bytes: Array(TestCertificates.exactCertificate.utf8), format: .pem)
                #expect(leaf == exact)
                #expect(Self.handshakes(metrics, "succeeded") == 1)
                // Each proxied response's latency, in the service's histogram.
                let latency = try metrics.expectTimer(
                    "portico_http_response_latency_seconds",
                    [("service", "default/a")]
                )
                #expect(latency.values.count == 3)
                #expect(latency.values.allSatisfy { $0 >= 0 && $0 < 5_000_000_000 })
                if fastLane {
                    let statistics = Self.statistics(engine)
                    #expect(statistics.tlsHandshakes == 1)
                    #expect(statistics.served == 3)
                    #expect(statistics.handedOver == 0 && statistics.relayed == 0)
                }
                await client.close()
            }
        }

        /// Requests the lane does not serve (a chunked body, an upgrade) on a connection whose
        /// TLS the lane holds go to the engine through the relay, with the client's address, the
        /// TLS port and scheme; the connection then stays with the engine, and ends when the
        /// engine closes it.
        @Test func requestsTheLaneDoesNotServeAreRelayed() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream), fastLane: true) { engine, ports in
                // An upgrade first (the test upstream switches on a new upstream connection only).
                let tunnel = try await Self.connect(ports[.https])
                try await tunnel.send(
                    "GET /ws HTTP/1.1\r\nHost: a.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
                )
                #expect(try await tunnel.readResponse().status == 101)
                try await tunnel.send("ping")
                var echoed = ""
                while echoed.count < "echo:ping".count { echoed += try await tunnel.readChunk() }
                #expect(echoed == "echo:ping")
                await tunnel.close()

                let client = try await Self.connect(ports[.https])
                try await client.send("GET /first HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                try await client.send(
                    "POST /count HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: a.example.com\r\n\r\n"
                )
                let counted = try await client.readResponse()
                #expect(counted.status == 200 && counted.body == "received 5", "\(counted.body)")
                let after = try await client.readResponse()
                #expect(after.body.hasPrefix("upstream a GET /after\n"))
                for line in [
                    "x-forwarded-proto: https", "x-forwarded-port: \(ports[.https]!)", "x-forwarded-for: 127.0.0.1",
                ] {
                    #expect(after.body.contains("\n\(line)\n"), "\(line)")
                }
                // A large response through the relay (backpressure on both of its hops).
                try await client.send("GET /download?n=3000000 HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                let download = try await client.readResponse(keepBody: false)
                #expect(download.status == 200 && download.bodyLength == 3_000_000)
                await client.close()

                // An upload the engine refuses midway (413, then it closes): the client still
                // gets the answer while its body is dropped.
                let refused = try await Self.connect(ports[.https])
                var upload = "POST /count HTTP/1.1\r\nHost: small.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                let chunk = String(repeating: "x", count: 16_384)
                for _ in 0..<64 { upload += "4000\r\n\(chunk)\r\n" }
                try await refused.send(upload + "0\r\n\r\n")
                let tooLarge = try await refused.readResponse()
                #expect(tooLarge.status == 413, "\(tooLarge.body)")
                #expect(try await refused.waitForClose())

                // The engine closes: the lane closes the client's connection after the answer.
                let closing = try await Self.connect(ports[.https])
                try await closing.send(
                    "POST /count HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n"
                        + "Connection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                )
                #expect(try await closing.readResponse().body == "received 2")
                #expect(try await closing.waitForClose())

                let statistics = Self.statistics(engine)
                #expect(statistics.tlsHandshakes == 4)
                #expect(statistics.relayed == 4)
                #expect(statistics.served == 1)
                // The relays end with their connections, and each relayed client was counted
                // once (by the engine, from the relay's start).
                let open = try await Self.settled(engine)
                #expect(open.relays == 0 && open.clients == 0)
                #expect(engine.openConnections == 0)
            }
        }

        /// A relayed client that stops reading a large response is closed after the idle
        /// timeout, whatever the engine does meanwhile (it cannot write either).
        @Test func aRelayedClientThatStopsReadingIsClosed() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream)
            configuration.limits = HTTPLimits(idleTimeout: .milliseconds(400))
            try await TestSupport.withEngine(configuration, fastLane: true) { engine, ports in
                let client = try await Self.connect(ports[.https])
                try await client.send(
                    "POST /download?n=50000000 HTTP/1.1\r\nHost: a.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "0\r\n\r\n"
                )
                _ = try await client.fillOnce()  // the response began; nothing more is read
                #expect(Self.statistics(engine).relayed == 1)
                let open = try await Self.settled(engine, seconds: 3)
                #expect(open.relays == 0 && open.clients == 0)
                await client.close()
            }
        }

        /// A client that offers `h2` speaks HTTP/2 with the lane (ALPN h2, the lane's SETTINGS
        /// first, a stream answered through the upstream with the TLS forwarding fields) unless
        /// a route it may reach is not the lane's (here an HTTP/2 upstream, gRPC): then it is
        /// the engine's from its first byte, the lane only peeked at its ClientHello.
        @Test(arguments: [false, true])
        func h2ClientsAreTheLanesUnlessAnUpstreamSpeaksHTTP2(grpcPool: Bool) async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream)
            if grpcPool {
                // Another path of the same hosts: this client may ask for it.
                configuration.pools["g"] = UpstreamPool(endpoints: [TestSupport.endpoint(upstream)], http2: true)
                configuration.routes = TestSupport.routes([
                    (nil, "/", HTTPRoute(service: "default/a", pool: "a")),
                    (nil, "/grpc", HTTPRoute(service: "default/g", pool: "g")),
                ])
            }
            let metrics = TestMetrics()
            try await TestSupport.withEngine(configuration, metrics: metrics, fastLane: true) { engine, ports in
                let client = try await Self.connect(ports[.https], protocols: ["h2", "http/1.1"], serverName: nil)
                // (Whoever speaks HTTP/2 sends its SETTINGS, with the stream limit.)
                let settings = try await client.startHTTP2()
                #expect(settings[0x3] == 100, "SETTINGS_MAX_CONCURRENT_STREAMS")
                try await client.sendRequest(stream: 1, path: "/h2")
                let (text, interruption) = try await client.readBody(stream: 1)
                #expect(interruption == nil, "\(interruption.map { "frame type \($0.type)" } ?? "")")
                #expect(text.hasPrefix("upstream a GET /h2\n"), "\(text)")
                #expect(text.contains("\nx-forwarded-proto: https\n"), "\(text)")
                let statistics = Self.statistics(engine)
                if grpcPool {
                    #expect(statistics.handedOver == 1 && statistics.tlsHandshakes == 0)
                    #expect(statistics.http2Connections == 0)
                } else {
                    #expect(statistics.handedOver == 0 && statistics.tlsHandshakes == 1)
                    #expect(statistics.http2Connections == 1 && statistics.served == 1)
                }
                #expect(Self.handshakes(metrics, "succeeded") == 1)
                await client.close()
            }
        }

        /// The engine closes a relayed connection without reading what the client still sends
        /// (a malformed head: 400, then close): the 400 reaches the client, the rest of its
        /// bytes are dropped, and the connection ends. (Whether the lane first meets a failed
        /// write to the pair or the engine's end of stream depends on timing; here it is
        /// usually the end of stream, then the linger drains the client.)
        @Test func theEnginesAnswerGoesOutWhenItStopsReadingARelay() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream), fastLane: true) { engine, ports in
                let client = try await Self.connect(ports[.https])
                // 4 MiB after the head: far more than the socket pair and the engine's reads
                // hold, still being sent when the engine has closed its end.
                var bytes = ByteBuffer(string: "GET /bad HTTP/1.1\r\nHost: a.example.com\r\nNo colon here\r\n\r\n")
                bytes.writeRepeatingByte(UInt8(ascii: "x"), count: 4 << 20)
                try await client.send(bytes)
                let answer = try await client.readResponse()
                #expect(answer.status == 400, "\(answer.body)")
                #expect(try await client.waitForClose())
                let statistics = Self.statistics(engine)
                #expect(statistics.relayed == 1 && statistics.tlsHandshakes == 1)
                let open = try await Self.settled(engine)
                #expect(open.relays == 0 && open.clients == 0)
            }
        }

        /// A name whose routes all need the engine (here: a source range) is the engine's from
        /// the ClientHello: the lane does not terminate TLS only to relay every request. A name
        /// with a route the lane serves stays the lane's.
        @Test func namesWhoseRoutesAllNeedTheEngineGoThereFromTheClientHello() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream)
            configuration.routes = TestSupport.routes([
                (nil, "/", HTTPRoute(service: "default/a", pool: "a")),
                (
                    "policy.example.com", "/",
                    HTTPRoute(service: "default/a", pool: "a", allowedSources: [IPAddressRange("127.0.0.0/8")!])
                ),
            ])
            try await TestSupport.withEngine(configuration, fastLane: true) { engine, ports in
                let policy = try await Self.connect(ports[.https], serverName: "policy.example.com")
                try await policy.send("GET /p HTTP/1.1\r\nHost: policy.example.com\r\n\r\n")
                let answer = try await policy.readResponse()
                #expect(answer.status == 200 && answer.body.hasPrefix("upstream a GET /p\n"))
                var statistics = Self.statistics(engine)
                #expect(statistics.handedOver == 1 && statistics.tlsHandshakes == 0 && statistics.relayed == 0)
                await policy.close()

                let plain = try await Self.connect(ports[.https])
                try await plain.send("GET /q HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                #expect(try await plain.readResponse().body.hasPrefix("upstream a GET /q\n"))
                statistics = Self.statistics(engine)
                #expect(statistics.tlsHandshakes == 1 && statistics.served == 1 && statistics.handedOver == 1)
                await plain.close()

                // Without SNI nothing tells the host: the lane's, which relays the policy route.
                let unnamed = try await Self.connect(ports[.https], serverName: nil)
                try await unnamed.send("GET /u HTTP/1.1\r\nHost: policy.example.com\r\n\r\n")
                #expect(try await unnamed.readResponse().body.hasPrefix("upstream a GET /u\n"))
                statistics = Self.statistics(engine)
                #expect(statistics.tlsHandshakes == 2 && statistics.relayed == 1)
                await unnamed.close()
            }
        }

        /// A ClientHello that arrives in two pieces is waited for (the lane peeks until the
        /// record is whole), and bytes that are not TLS go to the engine's TLS handler, which
        /// fails the handshake and closes.
        @Test func aClientHelloInPiecesAndBytesThatAreNotTLS() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let metrics = TestMetrics()
            try await TestSupport.withEngine(self.configuration(upstream), metrics: metrics, fastLane: true) {
                engine,
                ports in
                let port = ports[.https]!
                let answer = try await Task.detached {
                    try Self.exchangeOverTLSInPieces(port: port, request: "GET /pieces HTTP/1.1\r\nHost: a\r\n\r\n")
                }.value
                #expect(answer.contains("upstream a GET /pieces"), "\(answer)")
                #expect(Self.statistics(engine).tlsHandshakes == 1)

                let plain = try await TestSupport.connect(port)
                try await plain.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(try await plain.waitForClose())
                #expect(Self.statistics(engine).handedOver == 1)
                var failed: Int64 = 0
                for _ in 0..<100 where failed == 0 {
                    try await Task.sleep(nanoseconds: 10_000_000)
                    failed = Self.handshakes(metrics, "failed")
                }
                #expect(failed == 1)
            }
        }

        /// A TLS client in an `EmbeddedChannel` over a blocking socket: its ClientHello is sent
        /// in two writes 100 ms apart, then bytes are pumped both ways until the response to
        /// `request` is in.
        private static func exchangeOverTLSInPieces(port: Int, request: String) throws -> String {
            let channel = EmbeddedChannel()
            let handler = try NIOSSLClientHandler(
                context: Self.clientContext(protocols: ["http/1.1"]),
                serverHostname: Self.exactName
            )
            try channel.pipeline.syncOperations.addHandler(handler)
            _ = channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port))
            // (Held by TLS until the handshake is done: no waiting for the write here.)
            channel.writeAndFlush(ByteBuffer(string: request), promise: nil)

            let descriptor = try blockingConnection(port: port)
            defer { close(descriptor) }
            func sendAll(_ bytes: [UInt8]) {
                var offset = 0
                while offset < bytes.count {
                    let sent = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
                    guard sent > 0 else { return }
                    offset += sent
                }
            }
            var hello: [UInt8] = []
            while let part = try channel.readOutbound(as: ByteBuffer.self) { hello += Array(part.readableBytesView) }
            guard hello.count > 10 else { throw ClientError(description: "no ClientHello") }
            sendAll(Array(hello[..<10]))
            usleep(100_000)
            sendAll(Array(hello[10...]))

            var answer = ""
            var chunk = [UInt8](repeating: 0, count: 16_384)
            while !answer.contains("\r\n\r\n") || !answer.contains("upstream a") {
                let count = recv(descriptor, &chunk, chunk.count, 0)
                guard count > 0 else { break }
                try channel.writeInbound(ByteBuffer(bytes: chunk[..<count]))
                while let part = try channel.readOutbound(as: ByteBuffer.self) {
                    sendAll(Array(part.readableBytesView))
                }
                while let part = try channel.readInbound(as: ByteBuffer.self) { answer += String(buffer: part) }
            }
            return answer
        }
    }
}

/// The ClientHello reader, on the bytes of a real ClientHello (NIOSSL's, from an
/// `EmbeddedChannel`).
@Suite("ClientHello")
struct ClientHelloSummaryTests {
    private static func clientHello(serverName: String?, protocols: [String]) throws -> [UInt8] {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        tls.applicationProtocols = protocols
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            NIOSSLClientHandler(context: NIOSSLContext(configuration: tls), serverHostname: serverName)
        )
        _ = channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        var bytes: [UInt8] = []
        while let part = try channel.readOutbound(as: ByteBuffer.self) { bytes += Array(part.readableBytesView) }
        _ = try? channel.finish()
        return bytes
    }

    @Test func serverNameAndProtocolsAreRead() throws {
        let hello = try Self.clientHello(serverName: "app.example.com", protocols: ["h2", "http/1.1"])
        let parsed = hello.withUnsafeBytes { ClientHelloSummary.parse($0) }
        #expect(
            parsed
                == .hello(ClientHelloSummary(serverName: "app.example.com", applicationProtocols: ["h2", "http/1.1"]))
        )
        let bare = try Self.clientHello(serverName: nil, protocols: [])
        #expect(bare.withUnsafeBytes { ClientHelloSummary.parse($0) } == .hello(ClientHelloSummary()))
    }

    @Test func partsAreIncompleteAndOtherBytesUnreadable() throws {
        let hello = try Self.clientHello(serverName: "app.example.com", protocols: ["http/1.1"])
        for end in 0..<hello.count {
            let parsed = hello[..<end].withUnsafeBytes { ClientHelloSummary.parse($0) }
            #expect(parsed == .incomplete, "first \(end) bytes")
        }
        #expect(Array("GET / HTTP/1.1\r\n".utf8).withUnsafeBytes { ClientHelloSummary.parse($0) } == .unreadable)
        // A record that says it is longer than TLS allows, and a handshake that is not a
        // ClientHello.
        #expect([22, 3, 1, 0x40, 0x01].withUnsafeBytes { ClientHelloSummary.parse($0) } == .unreadable)
        var serverHello = hello
        serverHello[5] = 2
        #expect(serverHello.withUnsafeBytes { ClientHelloSummary.parse($0) } == .unreadable)
        // A ClientHello longer than its record (one split over records: the engine reads it).
        var split = hello
        split[6] = 0xFF
        #expect(split.withUnsafeBytes { ClientHelloSummary.parse($0) } == .unreadable)
    }
}
#endif
