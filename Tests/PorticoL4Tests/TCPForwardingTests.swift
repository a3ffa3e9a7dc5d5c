import NIOCore
import NIOPosix
import PorticoL4
import Testing

@Suite(.timeLimit(.minutes(1)))
struct TCPForwardingTests {
    static func forward(_ endpoints: [L4Endpoint], address: String = "127.0.0.1") -> TCPForward {
        TCPForward(address: address, port: 0, service: "mail/smtp", endpoints: endpoints)
    }

    @Test func echoAndHalfCloseBothWays() async throws {
        let upstream = try await TestTCPServer.start()
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(tcp: [Self.forward([upstream.endpoint])]))
        let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, Self.forward([]).key))

        try await client.send("hello")
        #expect(await client.read(atLeast: 5) == "hello")
        // The client shuts its write side: the upstream reads EOF, still answers, then closes.
        try await client.shutdownWrite()
        #expect(await client.readToEnd() == "helloEOF\n")
        #expect(try await upstream.connection(0).sawEOF)
        #expect(await TestSupport.eventually { engine.openConnections == 0 })

        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_tcp_connections_accepted_total") == 1 }
        )
        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_tcp_bytes_from_clients_total") == 5 }
        )
        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_tcp_bytes_to_clients_total") == 9 }
        )
        #expect(await TestSupport.eventually { TestSupport.meter(metrics, "portico_tcp_connections_active") == 0 })
        let dimensions = try #require(
            metrics.counters(label: "portico_tcp_connections_accepted_total").first?.dimensions
        )
        #expect(dimensions.contains { $0 == ("service", "mail/smtp") })
        #expect(dimensions.contains { $0 == ("address", "127.0.0.1:0") })
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test func upstreamSpeaksFirstAndClosesFirst() async throws {
        // SMTP-like: the server greets before the client says anything, then ends the session.
        let upstream = try await TestTCPServer.start(.init(greeting: "220 ready\r\n"))
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [Self.forward([upstream.endpoint])]))
        let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, Self.forward([]).key))
        #expect(await client.read(atLeast: 11) == "220 ready\r\n")
        try await upstream.connection(0).channel.close(mode: .output)
        // The upstream's EOF reaches the client while the client can still write.
        #expect(await client.readToEnd() == "220 ready\r\n")
        try await client.send("QUIT\r\n")
        let connection = try await upstream.connection(0)
        #expect(await TestSupport.eventually { connection.receivedText == "QUIT\r\n" })
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test func roundRobinAndNextEndpointOnFailure() async throws {
        let first = try await TestTCPServer.start(.init(greeting: "A"))
        let second = try await TestTCPServer.start(.init(greeting: "B"))
        let dead = try await TestSupport.deadEndpoint()
        let forward = Self.forward([first.endpoint, dead, second.endpoint])
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let address = try TestSupport.bound(engine, forward.key)

        var greetings: [String] = []
        for _ in 0..<6 {
            let client = try await TestTCPClient.connect(to: address)
            greetings.append(await client.read(atLeast: 1))
            await client.close()
        }
        // Start points rotate A, dead->B, B, A, dead->B, B.
        #expect(greetings == ["A", "B", "B", "A", "B", "B"])
        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_tcp_connect_failures_total") == 2 }
        )
        await engine.shutdown(gracePeriod: .zero)
        await first.stop()
        await second.stop()
    }

    @Test func connectTimeoutMovesOn() async throws {
        // The first endpoint never answers the SYN: the attempt times out, the next one serves.
        let (silent, silentChannels) = try await TestSupport.unresponsiveEndpoint()
        let upstream = try await TestTCPServer.start(.init(greeting: "up"))
        var forward = Self.forward([silent, upstream.endpoint])
        forward.connectTimeout = .milliseconds(150)
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let clock = ContinuousClock()
        let start = clock.now
        let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, forward.key))
        #expect(await client.read(atLeast: 2) == "up")
        let elapsed = clock.now - start
        #expect(elapsed >= .milliseconds(140) && elapsed < .seconds(2), "answered after \(elapsed)")
        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_tcp_connect_failures_total") == 1 }
        )
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
        for channel in silentChannels { try? await channel.close() }
    }

    @Test func noEndpointsOrNoneReachableClosesTheClient() async throws {
        let dead = try await TestSupport.deadEndpoint()
        let empty = Self.forward([])
        let unreachable = Self.forward([dead, dead], address: "127.0.0.2")
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(tcp: [empty, unreachable]))
        for key in [empty.key, unreachable.key] {
            let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, key))
            #expect(await client.readToEnd(timeout: .seconds(2)) == "")
            #expect(client.sawEnd)
        }
        // Each listener records its failed connect; under load the client may see the close
        // before the count lands, and the unreachable listener may stop after its first
        // dead endpoint once the client is gone: at least one failure per listener that tried.
        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_tcp_connect_failures_total") >= 1 }
        )
        #expect(await TestSupport.eventually { engine.openConnections == 0 })
        await engine.shutdown(gracePeriod: .zero)
    }

    @Test func idleConnectionsClose() async throws {
        let upstream = try await TestTCPServer.start()
        var forward = Self.forward([upstream.endpoint])
        forward.idleTimeout = .milliseconds(200)
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, forward.key))
        // Time from before the last activity: the close can come no sooner than the idle
        // timeout after it, however late this task runs under load.
        let clock = ContinuousClock()
        let start = clock.now
        try await client.send("ping")
        #expect(await client.read(atLeast: 4) == "ping")
        await client.readToEnd(timeout: .seconds(3))
        let elapsed = clock.now - start
        #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(2), "closed after \(elapsed)")
        #expect(await TestSupport.eventually { !upstream.connections[0].channel.isActive })
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test func fastSenderIntoStalledReceiverIsHeldBack() async throws {
        let upstream = try await TestTCPServer.start(.init(echo: false, paused: true, checkPattern: true))
        let forward = Self.forward([upstream.endpoint])
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, forward.key))

        let chunkSize = 1 << 16
        let chunks = 1024  // 64 MiB
        let pattern = ByteBuffer(bytes: (0..<(chunkSize + 251)).map { UInt8($0 % 251) })
        // Slices of one pattern buffer: the test's own queue holds no copies.
        var lastWrite: EventLoopFuture<Void>?
        for chunk in 0..<chunks {
            let phase = (chunk * chunkSize) % 251
            lastWrite = client.channel.write(pattern.getSlice(at: phase, length: chunkSize)!)
        }
        client.channel.flush()
        // The upstream reads nothing: once the socket buffers are full the proxy must stop
        // reading from the client, and the count of bytes it took must stop growing.
        func proxied() -> Int64 { TestSupport.counter(metrics, "portico_tcp_bytes_from_clients_total") }
        var samples: [Int64] = [proxied()]
        while samples.count < 50 {
            try await Task.sleep(for: .milliseconds(200))
            samples.append(proxied())
            if samples.count >= 3, samples.suffix(3).allSatisfy({ $0 == samples.last! }) { break }
        }
        let stalledAt = samples.last!
        #expect(samples.suffix(3).allSatisfy { $0 == stalledAt }, "the proxy kept reading: \(samples)")
        #expect(stalledAt > 0)
        // Kernel socket buffers on both sides plus at most the 64 KiB write high watermark.
        #expect(stalledAt < 24 << 20, "the proxy took \(stalledAt) bytes from the client")
        #expect(try await upstream.connection(0).count == 0)

        upstream.resumeReading()
        try await lastWrite?.get()
        let connection = try await upstream.connection(0)
        #expect(await TestSupport.eventually(.seconds(30)) { connection.count == chunks * chunkSize })
        #expect(connection.patternMismatches == 0)
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }
}
