import NIOCore
import PorticoL4
import Testing

@Suite(.timeLimit(.minutes(1)))
struct ProxyProtocolForwardingTests {
    static func v2Prefix(_ familyAndTransport: UInt8, length: UInt16) -> [UInt8] {
        ProxyHeader.v2Signature + [0x21, familyAndTransport, UInt8(length >> 8), UInt8(length & 0xFF)]
    }

    static func portBytes(_ port: Int) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xFF)] }

    @Test func v1HeaderBeforeTheFirstClientByte() async throws {
        let upstream = try await TestTCPServer.start()
        let forward = TCPForward(
            address: "127.0.0.1",
            port: 0,
            service: "default/kms",
            endpoints: [upstream.endpoint],
            sendProxyProtocol: .v1
        )
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let client = try await TestTCPClient.connect(to: listener)
        try await client.send("data")
        let expected = "PROXY TCP4 127.0.0.1 127.0.0.1 \(client.localAddress.port!) \(listener.port!)\r\ndata"
        let connection = try await upstream.connection(0)
        #expect(await TestSupport.eventually { connection.count >= expected.utf8.count })
        #expect(connection.receivedText == expected)
        // The header goes to the upstream only: the client gets back just its own bytes.
        #expect(await client.read(atLeast: expected.utf8.count) == expected)
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test func v2HeaderWhenTheUpstreamSpeaksFirst() async throws {
        let upstream = try await TestTCPServer.start(.init(greeting: "220\r\n", echo: false))
        let forward = TCPForward(
            address: "127.0.0.1",
            port: 0,
            service: "mail/smtp",
            endpoints: [upstream.endpoint],
            sendProxyProtocol: .v2
        )
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let client = try await TestTCPClient.connect(to: listener)
        #expect(await client.read(atLeast: 5) == "220\r\n")
        let expected =
            Self.v2Prefix(0x11, length: 12) + [127, 0, 0, 1, 127, 0, 0, 1]
            + Self.portBytes(client.localAddress.port!) + Self.portBytes(listener.port!)
        let connection = try await upstream.connection(0)
        #expect(await TestSupport.eventually { connection.count >= 28 })
        #expect(connection.received == expected)
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    /// The socat job done right: an IPv6 front on ::1 for an IPv4 backend, with the IPv6
    /// client address in the header.
    @Test(arguments: [ProxyProtocolVersion.v1, .v2])
    func ipv6FrontForIPv4Backend(_ version: ProxyProtocolVersion) async throws {
        let upstream = try await TestTCPServer.start(host: "127.0.0.1")
        let forward = TCPForward(
            address: "::1",
            port: 0,
            service: "default/ingress",
            endpoints: [upstream.endpoint],
            sendProxyProtocol: version
        )
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let listener = try TestSupport.bound(engine, forward.key)
        let client = try await TestTCPClient.connect(to: listener)
        try await client.send("GET")
        let clientPort = client.localAddress.port!
        let header: [UInt8]
        switch version {
        case .v1:
            header = Array("PROXY TCP6 ::1 ::1 \(clientPort) \(listener.port!)\r\n".utf8)
        case .v2:
            let loopback = [UInt8](repeating: 0, count: 15) + [1]
            header =
                Self.v2Prefix(0x21, length: 36) + loopback + loopback + Self.portBytes(clientPort)
                + Self.portBytes(listener.port!)
        }
        let connection = try await upstream.connection(0)
        #expect(await TestSupport.eventually { connection.count >= header.count + 3 })
        #expect(connection.received == header + Array("GET".utf8))
        #expect(await client.read(atLeast: header.count + 3).hasSuffix("GET"))
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test func trustedV2HeaderSplitAcrossReadsBecomesTheOutgoingV1() async throws {
        let upstream = try await TestTCPServer.start()
        let forward = TCPForward(
            address: "127.0.0.1",
            port: 0,
            service: "default/web",
            endpoints: [upstream.endpoint],
            sendProxyProtocol: .v1,
            acceptProxyProtocolFrom: ["127.0.0.0/8", "fd00::/8"]
        )
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, forward.key))
        let incoming =
            Self.v2Prefix(0x11, length: 12) + [203, 0, 113, 7, 198, 51, 100, 1] + Self.portBytes(4242)
            + Self.portBytes(443)
        try await client.send(Array(incoming[0..<5]))
        try await Task.sleep(for: .milliseconds(20))
        try await client.send(Array(incoming[5...]) + Array("hi".utf8))
        let expected = "PROXY TCP4 203.0.113.7 198.51.100.1 4242 443\r\nhi"
        let connection = try await upstream.connection(0)
        #expect(await TestSupport.eventually { connection.count >= expected.utf8.count })
        #expect(connection.receivedText == expected)
        #expect(await client.read(atLeast: expected.utf8.count) == expected)
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test func trustedV1HeaderByteByByteBecomesTheOutgoingV2() async throws {
        let upstream = try await TestTCPServer.start()
        let forward = TCPForward(
            address: "127.0.0.1",
            port: 0,
            service: "default/web",
            endpoints: [upstream.endpoint],
            sendProxyProtocol: .v2,
            acceptProxyProtocolFrom: ["127.0.0.1"]
        )
        let (engine, _) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let client = try await TestTCPClient.connect(to: try TestSupport.bound(engine, forward.key))
        for byte in "PROXY TCP6 2001:db8::7 2001:db8::1 50000 25\r\n".utf8 {
            try await client.send([byte])
        }
        try await client.send("EHLO")
        let expected =
            Self.v2Prefix(0x21, length: 36)
            + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [7]
            + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
            + Self.portBytes(50_000) + Self.portBytes(25) + Array("EHLO".utf8)
        let connection = try await upstream.connection(0)
        #expect(await TestSupport.eventually { connection.count >= expected.count })
        #expect(connection.received == expected)
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test(arguments: [
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "PROXY " + String(repeating: "x", count: 200),
    ])
    func malformedHeaderFromTrustedSourceCloses(_ text: String) async throws {
        let upstream = try await TestTCPServer.start()
        let forward = TCPForward(
            address: "127.0.0.1",
            port: 0,
            service: "default/web",
            endpoints: [upstream.endpoint],
            acceptProxyProtocolFrom: ["127.0.0.1/32"]
        )
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let address = try TestSupport.bound(engine, forward.key)
        let client = try await TestTCPClient.connect(to: address)
        try await client.send(text)
        #expect(await client.readToEnd(timeout: .seconds(2)) == "")
        #expect(client.sawEnd)
        #expect(upstream.connections.isEmpty)
        #expect(
            await TestSupport.eventually {
                TestSupport.counter(metrics, "portico_tcp_proxy_headers_rejected_total") == 1
            }
        )
        // The listener still serves well-formed clients.
        let good = try await TestTCPClient.connect(to: address)
        try await good.send("PROXY UNKNOWN\r\nok")
        #expect(await good.read(atLeast: 2) == "ok")
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }

    @Test func untrustedPeerSendingAHeaderIsClosedOthersPassUntouched() async throws {
        let upstream = try await TestTCPServer.start()
        let forward = TCPForward(
            address: "127.0.0.1",
            port: 0,
            service: "default/web",
            endpoints: [upstream.endpoint],
            acceptProxyProtocolFrom: ["10.0.0.0/8"]
        )
        let (engine, metrics) = try await TestSupport.engine(L4Configuration(tcp: [forward]))
        let address = try TestSupport.bound(engine, forward.key)

        let spoofer = try await TestTCPClient.connect(to: address)
        try await spoofer.send("PRO")
        try await Task.sleep(for: .milliseconds(20))
        try await spoofer.send("XY TCP4 10.1.1.1 10.2.2.2 1 2\r\nsecret")
        #expect(await spoofer.readToEnd(timeout: .seconds(2)) == "")
        #expect(
            await TestSupport.eventually {
                TestSupport.counter(metrics, "portico_tcp_proxy_headers_rejected_total") == 1
            }
        )

        // Short first bytes that only look like the start of a signature, then EOF, pass through.
        let honest = try await TestTCPClient.connect(to: address)
        try await honest.send("PR")
        try await honest.shutdownWrite()
        #expect(await honest.readToEnd() == "PREOF\n")
        let connections = upstream.connections
        #expect(connections.allSatisfy { !$0.receivedText.contains("secret") })
        await engine.shutdown(gracePeriod: .zero)
        await upstream.stop()
    }
}
