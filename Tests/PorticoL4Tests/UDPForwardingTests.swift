import NIOCore
import PorticoL4
import Testing

@Suite(.timeLimit(.minutes(1)))
struct UDPForwardingTests {
    static func forward(
        _ endpoints: [L4Endpoint],
        address: String = "127.0.0.1",
        maxFlows: Int = 100,
        idle: TimeAmount = .seconds(30)
    ) -> UDPForward {
        UDPForward(
            address: address,
            port: 0,
            service: "dns/pihole",
            endpoints: endpoints,
            flowIdleTimeout: idle,
            maxFlows: maxFlows
        )
    }

    @Test func repliesComeFromTheListenerAddressAndPort() async throws {
        let upstream = try await TestUDPSocket.start(echo: true)
        let forward = Self.forward([upstream.endpoint])
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let client = try await TestUDPSocket.start(echo: false)

        try await client.send("query-1", to: listener)
        try await client.send("query-2", to: listener)
        #expect(await TestSupport.eventually { client.received.count == 2 })
        #expect(client.receivedTexts == ["query-1", "query-2"])
        #expect(client.received.allSatisfy { $0.remoteAddress == listener })
        // One flow: both datagrams reached the upstream from the same socket.
        #expect(Set(upstream.received.map(\.remoteAddress)).count == 1)
        #expect(TestSupport.meter(metrics, "portico_udp_flows_active") == 1)
        #expect(
            await TestSupport.eventually {
                TestSupport.counter(metrics, "portico_udp_datagrams_from_clients_total") == 2
            }
        )
        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_udp_datagrams_to_clients_total") == 2 }
        )
        #expect(
            await TestSupport.eventually { TestSupport.counter(metrics, "portico_udp_bytes_to_clients_total") == 14 }
        )
        await engine.shutdown(gracePeriod: .zero)
        #expect(await TestSupport.eventually { TestSupport.meter(metrics, "portico_udp_flows_active") == 0 })
        await client.stop()
        await upstream.stop()
    }

    @Test func eachClientIsAFlowAndFlowsRotateEndpoints() async throws {
        let first = try await TestUDPSocket.start(echo: true)
        let second = try await TestUDPSocket.start(echo: true)
        let forward = Self.forward([first.endpoint, second.endpoint])
        let (engine, _) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        var clients: [TestUDPSocket] = []
        for index in 0..<4 {
            let client = try await TestUDPSocket.start(echo: false)
            try await client.send("c\(index)", to: listener)
            #expect(await TestSupport.eventually { client.receivedTexts == ["c\(index)"] })
            clients.append(client)
        }
        #expect(first.receivedTexts == ["c0", "c2"])
        #expect(second.receivedTexts == ["c1", "c3"])
        await engine.shutdown(gracePeriod: .zero)
        for socket in clients + [first, second] { await socket.stop() }
    }

    @Test func noReorderingWithinAFlow() async throws {
        let upstream = try await TestUDPSocket.start(echo: false)
        let forward = Self.forward([upstream.endpoint])
        let (engine, _) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let client = try await TestUDPSocket.start(echo: false)
        // Sent back to back: the first ones wait while the flow's socket is set up.
        for index in 0..<200 {
            client.channel.write(
                AddressedEnvelope(remoteAddress: listener, data: ByteBuffer(string: "\(index)")),
                promise: nil
            )
        }
        client.channel.flush()
        #expect(await TestSupport.eventually { upstream.received.count >= 150 })
        try await Task.sleep(for: .milliseconds(50))
        let numbers = upstream.receivedTexts.compactMap(Int.init)
        #expect(numbers == numbers.sorted())
        #expect(numbers.first == 0)
        await engine.shutdown(gracePeriod: .zero)
        await client.stop()
        await upstream.stop()
    }

    /// A burst from several clients at once, interleaved (as one vector read and one tick see
    /// it): every datagram reaches its own client's flow in order, and every reply comes back
    /// to the right client, in order, from the listener's address. Same-size datagrams: the
    /// batches are sent as segmented runs where the kernel offers it.
    @Test func interleavedBurstsFromSeveralClientsStayInTheirFlowsAndInOrder() async throws {
        let upstream = try await TestUDPSocket.start(echo: true)
        let forward = Self.forward([upstream.endpoint])
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        var clients: [TestUDPSocket] = []
        for index in 0..<4 {
            let client = try await TestUDPSocket.start(echo: false)
            // Open the flow first, so that the burst is not held by the connect queue.
            try await client.send("hello \(index)", to: listener)
            #expect(await TestSupport.eventually { client.received.count == 1 })
            clients.append(client)
        }
        let count = 150
        func payload(_ client: Int, _ sequence: Int) -> String {
            "client \(client) #" + String(String(sequence + 10_000).suffix(4))
        }
        for sequence in 0..<count {
            for (index, client) in clients.enumerated() {
                client.channel.write(
                    AddressedEnvelope(remoteAddress: listener, data: ByteBuffer(string: payload(index, sequence))),
                    promise: nil
                )
            }
        }
        for client in clients { client.channel.flush() }
        for client in clients {
            #expect(await TestSupport.eventually { client.received.count == count + 1 })
        }
        for (index, client) in clients.enumerated() {
            #expect(client.receivedTexts.dropFirst() == ArraySlice((0..<count).map { payload(index, $0) }))
            #expect(client.received.allSatisfy { $0.remoteAddress == listener })
        }
        // At the upstream: one flow socket per client, each carrying only its client's
        // datagrams, in order.
        let bySource = Dictionary(grouping: upstream.received, by: \.remoteAddress)
        #expect(bySource.count == clients.count)
        for datagrams in bySource.values {
            let texts = datagrams.map { String(buffer: $0.data) }.dropFirst()
            guard let first = texts.first, let client = Int(first.split(separator: " ")[1]) else {
                Issue.record("unexpected datagram \(datagrams.first.map { String(buffer: $0.data) } ?? "none")")
                continue
            }
            #expect(Array(texts) == (0..<count).map { payload(client, $0) })
        }
        #expect(TestSupport.counter(metrics, "portico_udp_datagrams_dropped_total") == 0)
        await engine.shutdown(gracePeriod: .zero)
        for socket in clients + [upstream] { await socket.stop() }
    }

    /// Datagrams of any size up to the IPv4 maximum pass whole both ways (the listener reads
    /// each into its own 64 KiB slot), mixed with small ones, in order.
    @Test func largeAndSmallDatagramsPassWhole() async throws {
        let upstream = try await TestUDPSocket.start(echo: true)
        let forward = Self.forward([upstream.endpoint])
        let (engine, _) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let client = try await TestUDPSocket.start(echo: false)
        let sizes = [65_507, 1, 9_000, 0, 65_507, 1_472, 1_472, 1_472, 300]
        let datagrams = sizes.enumerated().map { index, size in
            ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) })
        }
        for datagram in datagrams {
            client.channel.write(AddressedEnvelope(remoteAddress: listener, data: datagram), promise: nil)
        }
        client.channel.flush()
        #expect(await TestSupport.eventually { client.received.count == sizes.count })
        #expect(upstream.received.map(\.data) == datagrams)
        #expect(client.received.map(\.data) == datagrams)
        await engine.shutdown(gracePeriod: .zero)
        await client.stop()
        await upstream.stop()
    }

    @Test func fullTableDropsNewClientsAndKeepsExistingFlows() async throws {
        let upstream = try await TestUDPSocket.start(echo: true)
        let forward = Self.forward([upstream.endpoint], maxFlows: 2)
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        var clients: [TestUDPSocket] = []
        for _ in 0..<3 { clients.append(try await TestUDPSocket.start(echo: false)) }

        try await clients[0].send("a", to: listener)
        try await clients[1].send("b", to: listener)
        #expect(await TestSupport.eventually { clients[0].received.count == 1 && clients[1].received.count == 1 })
        try await clients[2].send("c", to: listener)
        #expect(await TestSupport.eventually { TestSupport.counter(metrics, "portico_udp_flows_dropped_total") == 1 })
        try await clients[0].send("a2", to: listener)
        #expect(await TestSupport.eventually { clients[0].received.count == 2 })
        #expect(clients[2].received.isEmpty)
        #expect(!upstream.receivedTexts.contains("c"))
        await engine.shutdown(gracePeriod: .zero)
        for socket in clients + [upstream] { await socket.stop() }
    }

    @Test func idleFlowsExpireAndFreeTheirSlot() async throws {
        let upstream = try await TestUDPSocket.start(echo: true)
        // Long enough that the echo comes back before the flow expires on a loaded machine.
        let forward = Self.forward([upstream.endpoint], maxFlows: 1, idle: .milliseconds(500))
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let first = try await TestUDPSocket.start(echo: false)
        let second = try await TestUDPSocket.start(echo: false)

        try await first.send("1", to: listener)
        #expect(await TestSupport.eventually { first.received.count == 1 })
        #expect(await TestSupport.eventually { TestSupport.meter(metrics, "portico_udp_flows_active") == 0 })
        try await second.send("2", to: listener)
        #expect(await TestSupport.eventually { second.received.count == 1 })
        #expect(await TestSupport.eventually { TestSupport.counter(metrics, "portico_udp_flows_dropped_total") == 0 })
        // The expired flow's socket is gone: the upstream saw two different source ports.
        #expect(Set(upstream.received.map(\.remoteAddress)).count == 2)
        await engine.shutdown(gracePeriod: .zero)
        for socket in [first, second, upstream] { await socket.stop() }
    }

    @Test func proxyV2HeaderOnEveryDatagramFromAnIPv6Client() async throws {
        let upstream = try await TestUDPSocket.start(host: "127.0.0.1", echo: true)
        var forward = Self.forward([upstream.endpoint], address: "::1")
        forward.sendProxyProtocol = .v2
        let (engine, _) = try await TestSupport.engine(L4Configuration(udp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let client = try await TestUDPSocket.start(host: "::1", echo: false)
        try await client.send("one", to: listener)
        try await client.send("two", to: listener)
        #expect(await TestSupport.eventually { upstream.received.count == 2 })
        let loopback = [UInt8](repeating: 0, count: 15) + [1]
        let header =
            ProxyHeader.v2Signature + [0x21, 0x22, 0x00, 0x24] + loopback + loopback
            + [UInt8(client.address.port! >> 8), UInt8(client.address.port! & 0xFF)]
            + [UInt8(listener.port! >> 8), UInt8(listener.port! & 0xFF)]
        #expect(
            upstream.received.map { Array($0.data.readableBytesView) } == [
                header + Array("one".utf8), header + Array("two".utf8),
            ]
        )
        #expect(await TestSupport.eventually { client.received.count == 2 })
        #expect(client.received.allSatisfy { $0.remoteAddress == listener })
        await engine.shutdown(gracePeriod: .zero)
        await client.stop()
        await upstream.stop()
    }
}
