import NIOCore
import PorticoL4
import Testing

@Suite(.timeLimit(.minutes(1)))
struct LifecycleTests {
    @Test func reloadKeepsUnchangedListenersAndDrainsRemovedOnes() async throws {
        let old = try await TestTCPServer.start(.init(greeting: "old "))
        let new = try await TestTCPServer.start(.init(greeting: "new "))
        let dns = try await TestUDPSocket.start(echo: true)
        let kept = TCPForward(address: "127.0.0.1", port: 0, service: "a/kept", endpoints: [old.endpoint])
        let removed = TCPForward(address: "127.0.0.2", port: 0, service: "a/removed", endpoints: [old.endpoint])
        let udp = UDPForward(address: "127.0.0.1", port: 0, service: "a/dns", endpoints: [dns.endpoint])
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [kept, removed], udp: [udp]))
        let keptAddress = try TestSupport.bound(engine, kept.key)
        let removedAddress = try TestSupport.bound(engine, removed.key)
        let udpAddress = try TestSupport.bound(engine, udp.key)

        let established = try await TestTCPClient.connect(to: keptAddress)
        #expect(await established.read(atLeast: 4) == "old ")
        let draining = try await TestTCPClient.connect(to: removedAddress)
        #expect(await draining.read(atLeast: 4) == "old ")

        var changed = kept
        changed.endpoints = [new.endpoint]
        try await engine.apply(L4Configuration(tcp: [changed], udp: [udp]))

        // Same sockets: the port-0 listeners kept their ports.
        #expect(engine.boundAddresses[kept.key] == keptAddress)
        #expect(engine.boundAddresses[udp.key] == udpAddress)
        #expect(engine.boundAddresses[removed.key] == nil)
        // New connections take the new endpoints; established ones keep theirs.
        let fresh = try await TestTCPClient.connect(to: keptAddress)
        #expect(await fresh.read(atLeast: 4) == "new ")
        try await established.send("still")
        #expect(await established.read(atLeast: 9) == "old still")
        // The removed listener no longer accepts, but its connection finishes normally.
        await #expect(throws: (any Error).self) { _ = try await TestTCPClient.connect(to: removedAddress) }
        try await draining.send("bye")
        try await draining.shutdownWrite()
        #expect(await draining.readToEnd() == "old byeEOF\n")
        await engine.shutdown(gracePeriod: .zero)
        for server in [old, new] { await server.stop() }
        await dns.stop()
    }

    @Test func shutdownWaitsForConnectionsUpToTheGracePeriod() async throws {
        let upstream = try await TestTCPServer.start()
        let forward = TCPForward(address: "127.0.0.1", port: 0, service: "a/b", endpoints: [upstream.endpoint])
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let address = try TestSupport.bound(engine, forward.key)
        let finishing = try await TestTCPClient.connect(to: address)
        let lingering = try await TestTCPClient.connect(to: address)
        try await finishing.send("x")
        try await lingering.send("y")
        #expect(await finishing.read(atLeast: 1) == "x")
        #expect(await lingering.read(atLeast: 1) == "y")

        let clock = ContinuousClock()
        let start = clock.now
        let shutdown = Task { await engine.shutdown(gracePeriod: .milliseconds(500)) }
        // Stops accepting at once...
        #expect(await TestSupport.eventually { engine.boundAddresses.isEmpty })
        // ...a connection that ends by itself within the grace period ends normally...
        try await finishing.shutdownWrite()
        #expect(await finishing.readToEnd() == "xEOF\n")
        // ...and the one still open is closed when the grace period is over.
        #expect(await lingering.readToEnd(timeout: .seconds(3)) == "y")
        await shutdown.value
        let elapsed = clock.now - start
        #expect(elapsed >= .milliseconds(450) && elapsed < .seconds(3), "shutdown took \(elapsed)")
        #expect(engine.openConnections == 0)
        await upstream.stop()
    }

    @Test func invalidConfigurationChangesNothing() async throws {
        let upstream = try await TestTCPServer.start(.init(greeting: "ok"))
        let good = TCPForward(address: "127.0.0.1", port: 0, service: "a/b", endpoints: [upstream.endpoint])
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [good]))
        let address = try TestSupport.bound(engine, good.key)
        let invalid: [(L4Configuration, L4ConfigurationError)] = [
            (
                L4Configuration(udp: [
                    UDPForward(address: "127.0.0.1", port: 53, service: "a/dns", endpoints: [], sendProxyProtocol: .v1)
                ]),
                .proxyProtocolV1OverUDP(L4ListenerKey(address: "127.0.0.1", port: 53, transport: .udp))
            ),
            (
                L4Configuration(tcp: [
                    TCPForward(
                        address: "127.0.0.1",
                        port: 1,
                        service: "a/b",
                        endpoints: [],
                        acceptProxyProtocolFrom: ["lan"]
                    )
                ]),
                .invalidTrustedSource(L4ListenerKey(address: "127.0.0.1", port: 1, transport: .tcp), "lan")
            ),
            (
                L4Configuration(tcp: [good, good]),
                .duplicateListener(good.key)
            ),
            (
                L4Configuration(tcp: [TCPForward(address: "gateway", port: 1, service: "a/b", endpoints: [])]),
                .invalidListenerAddress(L4ListenerKey(address: "gateway", port: 1, transport: .tcp))
            ),
            (
                L4Configuration(tcp: [
                    TCPForward(
                        address: "::1",
                        port: 1,
                        service: "a/b",
                        endpoints: [L4Endpoint(host: "10.0.0.1", port: 0)]
                    )
                ]),
                .invalidEndpoint(
                    L4ListenerKey(address: "::1", port: 1, transport: .tcp),
                    L4Endpoint(host: "10.0.0.1", port: 0)
                )
            ),
        ]
        for (configuration, expected) in invalid {
            await #expect(throws: expected) { try await engine.apply(configuration) }
        }
        // A port already taken fails the apply: the listener bound meanwhile is closed again,
        // and the running one keeps serving.
        let other = TCPForward(address: "127.0.0.3", port: 0, service: "a/d", endpoints: [])
        let taken = TCPForward(address: "127.0.0.1", port: upstream.address.port!, service: "a/e", endpoints: [])
        await #expect(throws: (any Error).self) {
            try await engine.apply(L4Configuration(tcp: [good, other, taken]))
        }
        #expect(Array(engine.boundAddresses.keys) == [good.key])
        let client = try await TestTCPClient.connect(to: address)
        #expect(await client.read(atLeast: 2) == "ok")
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test(.enabled(if: isLinux, "IP_FREEBIND is Linux-only"))
    func bindsAnAddressThisHostDoesNotHoldYet() async throws {
        // TEST-NET and documentation prefixes are never local: binding needs IP_FREEBIND/IPV6_FREEBIND.
        let configuration = L4Configuration(
            tcp: [
                TCPForward(address: "192.0.2.10", port: 0, service: "a/vip", endpoints: []),
                TCPForward(address: "2001:db8::10", port: 0, service: "a/vip6", endpoints: []),
            ],
            udp: [UDPForward(address: "192.0.2.10", port: 0, service: "a/vip", endpoints: [])]
        )
        let (engine, _) = try await TestSupport.engine(configuration)
        #expect(engine.boundAddresses.count == 3)
        #expect(engine.boundAddresses[configuration.tcp[1].key]?.ipAddress == "2001:db8::10")
        await engine.shutdown(gracePeriod: .zero)
    }
}

#if os(Linux)
let isLinux = true
#else
let isLinux = false
#endif
