import Logging
import NIOPosix
import Testing

@testable import PorticoNetboot

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The proxyDHCP server on loopback, with crafted DHCP packets from a test socket.
@Suite(.serialized) struct ProxyDHCPServerTests {
    static let serverAddress = IPv4Address(127, 0, 0, 1)

    struct Fixture {
        let server: ProxyDHCPServer
        let addresses: ProxyDHCPServer.BoundAddresses
        let client: TestUDPSocket
        let metrics: TestMetricsFactory

        var dhcpPort: UInt16 { UInt16(self.addresses.dhcp.port!) }
        var bootServerPort: UInt16 { UInt16(self.addresses.bootServer.port!) }
    }

    /// A server whose broadcast replies go to the test socket's port, bound to the wildcard
    /// address so it receives them.
    func withServer(_ body: (Fixture) async throws -> Void) async throws {
        let client = try TestUDPSocket(wildcard: true)
        let metrics = TestMetricsFactory()
        var logger = Logger(label: "portico.proxydhcp.test")
        logger.logLevel = .warning
        let server = ProxyDHCPServer(
            configuration: .init(
                host: "127.0.0.1",
                dhcpPort: 0,
                bootServerPort: 0,
                clientPort: client.port,
                responder: ProxyDHCPResponder(
                    serverAddress: Self.serverAddress,
                    httpBase: URL(string: "http://127.0.0.1:8080/")!
                )
            ),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            metricsFactory: metrics
        )
        let addresses = try await server.start()
        let fixture = Fixture(server: server, addresses: addresses, client: client, metrics: metrics)
        do {
            try await body(fixture)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    func receiveReply(_ client: TestUDPSocket, timeout: Duration = .seconds(3)) throws -> (DHCPMessage, UInt16)? {
        guard let (bytes, port) = client.receive(timeout: timeout) else { return nil }
        return (try DHCPMessage(decoding: bytes), port)
    }

    @Test func pxeRequestOnBootServerPortGetsUnicastAcknowledgement() async throws {
        try await self.withServer { fixture in
            let request = DHCPFixtures.pxeDiscover(architecture: 7, type: .request)
            fixture.client.send(try request.encoded(), to: fixture.bootServerPort)
            let (reply, port) = try #require(try self.receiveReply(fixture.client))
            #expect(port == fixture.bootServerPort)
            #expect(reply.operation == .bootReply)
            #expect(try reply.messageType == .acknowledgement)
            #expect(reply.transactionID == request.transactionID)
            #expect(reply.clientHardwareAddressField == request.clientHardwareAddressField)
            #expect(reply.nextServerAddress == Self.serverAddress)
            #expect(try reply.serverIdentifier == Self.serverAddress)
            #expect(reply.bootFileName == "ipxe.efi")
            #expect(reply.vendorClassIdentifier == "PXEClient")
            #expect(reply.options[DHCPOptionCode.clientMachineIdentifier] == DHCPFixtures.uuidOption)
            #expect(fixture.metrics.value("portico_proxydhcp_replies_total", [("port", "4011")]) == 1)
        }
    }

    /// A PXE DISCOVER on the DHCP port gets an OFFER broadcast to the client port. A limited
    /// broadcast needs a route to leave; Linux loops a copy back to local sockets.
    @Test(.enabled(if: hasIPv4DefaultRoute(), "no IPv4 default route: a broadcast reply cannot be sent here"))
    func pxeDiscoverOnDHCPPortGetsBroadcastOffer() async throws {
        try await self.withServer { fixture in
            let request = DHCPFixtures.pxeDiscover(architecture: 0)
            fixture.client.send(try request.encoded(), to: fixture.dhcpPort)
            let (offer, _) = try #require(try self.receiveReply(fixture.client))
            #expect(try offer.messageType == .offer)
            #expect(offer.transactionID == request.transactionID)
            #expect(offer.yourAddress == .any)
            #expect(offer.bootFileName == "undionly.kpxe")
            #expect(try offer.pxeDiscoveryControl == .useBootFileDirectly)
        }
    }

    @Test func plainDHCPDiscoverGetsNoReply() async throws {
        try await self.withServer { fixture in
            var plain = DHCPFixtures.pxeDiscover()
            plain.options = DHCPOptions()
            plain.options[DHCPOptionCode.messageType] = [DHCPMessageType.discover.rawValue]
            for port in [fixture.dhcpPort, fixture.bootServerPort] {
                fixture.client.send(try plain.encoded(), to: port)
            }
            // A PXE DISCOVER on 4011 is answered (whatever its type): the socket is alive, and
            // the only reply to arrive is this one.
            let pxe = DHCPFixtures.pxeDiscover(architecture: 9)
            fixture.client.send(try pxe.encoded(), to: fixture.bootServerPort)
            let (reply, _) = try #require(try self.receiveReply(fixture.client))
            #expect(reply.bootFileName == "ipxe.efi")
            #expect(fixture.client.receive(timeout: .milliseconds(300)) == nil)
            #expect(fixture.metrics.value("portico_proxydhcp_ignored_total") == 2)
        }
    }

    @Test func malformedDatagramsAreCountedAndDropped() async throws {
        try await self.withServer { fixture in
            var generator = SeededGenerator(seed: 67)
            let valid = try DHCPFixtures.pxeDiscover(architecture: 7, type: .request).encoded()
            var datagrams: [[UInt8]] = [[], [1], Array(valid.prefix(239)), Array(valid.prefix(236)) + [1, 2, 3, 4]]
            for _ in 0..<200 {
                var mutated = valid
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    mutated[Int.random(in: 236..<mutated.count, using: &generator)] = UInt8.random(
                        in: 0...255,
                        using: &generator
                    )
                }
                datagrams.append(mutated)
                datagrams.append(generator.bytes(count: Int.random(in: 0...600, using: &generator)))
            }
            for datagram in datagrams {
                fixture.client.send(datagram, to: fixture.bootServerPort)
            }
            // Drain whatever the mutations still made answerable, then check it still answers.
            while fixture.client.receive(timeout: .milliseconds(200)) != nil {}
            // The kernel may drop some of the burst; each datagram that arrived is counted once.
            let metrics = fixture.metrics
            let received = metrics.value("portico_proxydhcp_received_total", [("port", "4011")])
            let malformed = metrics.value("portico_proxydhcp_malformed_total")
            let answered = metrics.value("portico_proxydhcp_replies_total", [("port", "4011")])
            #expect(malformed >= 4)
            #expect(received > 0 && received <= Int64(datagrams.count))
            #expect(received == malformed + metrics.value("portico_proxydhcp_ignored_total") + answered)
            fixture.client.send(valid, to: fixture.bootServerPort)
            let (reply, _) = try #require(try self.receiveReply(fixture.client))
            #expect(try reply.messageType == .acknowledgement)
        }
    }
}
