import Testing

@testable import PorticoNetboot

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite struct ProxyDHCPResponderTests {
    let server = IPv4Address(192, 0, 2, 10)
    let client = UDPEndpoint(address: .any, port: 68)
    var responder: ProxyDHCPResponder {
        ProxyDHCPResponder(serverAddress: self.server, httpBase: URL(string: "http://192.0.2.10:8080/")!)
    }

    /// The reply after a trip through the wire format, as a client would see it.
    func answer(
        _ request: DHCPMessage,
        on port: ProxyDHCPPort = .dhcp,
        from source: UDPEndpoint? = nil
    ) throws -> ProxyDHCPReply? {
        let decoded = try DHCPMessage(decoding: request.encoded())
        guard let reply = self.responder.answer(to: decoded, receivedOn: port, from: source ?? self.client) else {
            return nil
        }
        return ProxyDHCPReply(
            message: try DHCPMessage(decoding: reply.message.encoded()),
            destination: reply.destination
        )
    }

    @Test func biosDiscoverGetsProxyOfferForUndionly() throws {
        let request = DHCPFixtures.pxeDiscover(architecture: 0)
        let reply = try #require(try self.answer(request))
        let offer = reply.message
        #expect(reply.destination == UDPEndpoint(address: .broadcast, port: 68))
        #expect(offer.operation == .bootReply)
        #expect(offer.transactionID == request.transactionID)
        #expect(offer.clientHardwareAddressField == request.clientHardwareAddressField)
        #expect(offer.flags == request.flags)
        #expect(offer.yourAddress == .any)
        #expect(offer.nextServerAddress == self.server)
        #expect(offer.bootFileName == "undionly.kpxe")
        #expect(try offer.messageType == .offer)
        #expect(try offer.serverIdentifier == self.server)
        #expect(offer.vendorClassIdentifier == "PXEClient")
        #expect(offer.options[DHCPOptionCode.clientMachineIdentifier] == DHCPFixtures.uuidOption)
        #expect(try offer.pxeDiscoveryControl == .useBootFileDirectly)
        #expect(offer.options[DHCPOptionCode.vendorSpecificInformation] == [6, 1, 8, 255])
    }

    @Test(arguments: [
        (UInt16(6), "ipxe.efi"), (7, "ipxe.efi"), (9, "ipxe.efi"), (10, "snp.efi"), (11, "snp.efi"),
    ])
    func uefiArchitecturesGetTheirLoader(architecture: UInt16, file: String) throws {
        let reply = try #require(try self.answer(DHCPFixtures.pxeDiscover(architecture: architecture)))
        #expect(reply.message.bootFileName == file)
        #expect(reply.message.options[DHCPOptionCode.vendorSpecificInformation] == nil)
        #expect(reply.message.nextServerAddress == self.server)
    }

    @Test(arguments: [(UInt16(0x0F), "ipxe.efi"), (0x10, "ipxe.efi"), (0x13, "snp.efi")])
    func httpBootClientsGetURL(architecture: UInt16, file: String) throws {
        let request = DHCPFixtures.pxeDiscover(architecture: architecture, vendorClass: "HTTPClient:Arch:00016")
        let reply = try #require(try self.answer(request))
        #expect(reply.message.vendorClassIdentifier == "HTTPClient")
        #expect(reply.message.bootFileName == "http://192.0.2.10:8080/\(file)")
        #expect(reply.message.nextServerAddress == self.server)
    }

    @Test func ipxeIsSentToTheScriptNotTheLoaderAgain() throws {
        let byUserClass = DHCPFixtures.pxeDiscover(userClass: Array("iPXE".utf8))
        #expect(try self.answer(byUserClass)?.message.bootFileName == "http://192.0.2.10:8080/boot.ipxe")
        let byRFC3004 = DHCPFixtures.pxeDiscover(architecture: 7, userClass: [4] + Array("iPXE".utf8))
        #expect(try self.answer(byRFC3004)?.message.bootFileName == "http://192.0.2.10:8080/boot.ipxe")
        var byOption175 = DHCPFixtures.pxeDiscover()
        byOption175.options[DHCPOptionCode.ipxeEncapsulated] = [19, 1, 1]
        #expect(try self.answer(byOption175)?.message.bootFileName == "http://192.0.2.10:8080/boot.ipxe")
    }

    @Test func firmwareIPXECanBeTreatedAsPlainPXE() throws {
        var responder = self.responder
        responder.treatsFirmwareIPXEAsPlainPXE = true
        let rom = DHCPFixtures.pxeDiscover(userClass: Array("iPXE".utf8))
        #expect(
            responder.answer(to: rom, receivedOn: .dhcp, from: self.client)?.message.bootFileName == "undionly.kpxe"
        )
        let chained = DHCPFixtures.pxeDiscover(vendorClass: "PXEClient", userClass: Array("iPXE".utf8))
        #expect(
            responder.answer(to: chained, receivedOn: .dhcp, from: self.client)?.message.bootFileName
                == "http://192.0.2.10:8080/boot.ipxe"
        )
    }

    @Test func plainDHCPAndNonDiscoverOnPort67GetNoAnswer() throws {
        var plain = DHCPFixtures.pxeDiscover()
        plain.options[DHCPOptionCode.vendorClassIdentifier] = Array("MSFT 5.0".utf8)
        #expect(try self.answer(plain) == nil)
        plain.options[DHCPOptionCode.vendorClassIdentifier] = nil
        #expect(try self.answer(plain) == nil)
        #expect(try self.answer(DHCPFixtures.pxeDiscover(type: .request)) == nil)
        var reply = DHCPFixtures.pxeDiscover()
        reply.operation = .bootReply
        #expect(try self.answer(reply) == nil)
        #expect(try self.answer(DHCPFixtures.pxeDiscover(architecture: 2)) == nil)
    }

    @Test func clientsWithoutUUIDAreAnsweredWithoutOne() throws {
        let reply = try #require(try self.answer(DHCPFixtures.pxeDiscover(uuid: nil)))
        #expect(reply.message.options[DHCPOptionCode.clientMachineIdentifier] == nil)
    }

    @Test func malformedUUIDIsEchoedByteForByte() throws {
        let odd: [UInt8] = [0, 1, 2, 3]
        let reply = try #require(try self.answer(DHCPFixtures.pxeDiscover(uuid: odd)))
        #expect(reply.message.options[DHCPOptionCode.clientMachineIdentifier] == odd)
    }

    @Test func relayedDiscoverGoesBackToTheRelay() throws {
        var request = DHCPFixtures.pxeDiscover()
        request.relayAgentAddress = IPv4Address(10, 1, 0, 1)
        let reply = try #require(try self.answer(request))
        #expect(reply.destination == UDPEndpoint(address: IPv4Address(10, 1, 0, 1), port: 67))
        #expect(reply.message.relayAgentAddress == IPv4Address(10, 1, 0, 1))
    }

    @Test(arguments: [DHCPMessageType.request, .discover, .inform])
    func port4011AnswersAnyTypeWithAnACK(type: DHCPMessageType) throws {
        var request = DHCPFixtures.pxeDiscover(architecture: 7, type: type)
        request.clientAddress = IPv4Address(192, 0, 2, 77)
        let source = UDPEndpoint(address: IPv4Address(192, 0, 2, 77), port: 4011)
        let reply = try #require(try self.answer(request, on: .pxeBootServer, from: source))
        #expect(try reply.message.messageType == .acknowledgement)
        #expect(reply.message.yourAddress == IPv4Address(192, 0, 2, 77))
        #expect(reply.message.bootFileName == "ipxe.efi")
        #expect(reply.message.nextServerAddress == self.server)
        #expect(reply.destination == source)
    }

    @Test func architectureFallsBackToTheVendorClass() throws {
        var request = DHCPFixtures.pxeDiscover(vendorClass: "PXEClient:Arch:00011:UNDI:003016")
        request.options[DHCPOptionCode.clientArchitecture] = nil
        #expect(try self.answer(request)?.message.bootFileName == "snp.efi")
        request.options[DHCPOptionCode.clientArchitecture] = [7]
        #expect(try self.answer(request) == nil)
    }

    @Test func longURLsMoveToOption67() throws {
        let long = "http://" + String(repeating: "a", count: 130) + "/"
        let responder = ProxyDHCPResponder(serverAddress: self.server, httpBase: URL(string: long)!)
        let reply = try #require(
            responder.answer(
                to: DHCPFixtures.pxeDiscover(userClass: Array("iPXE".utf8)),
                receivedOn: .dhcp,
                from: self.client
            )
        )
        #expect(reply.message.bootFileName.isEmpty)
        #expect(reply.message.options[DHCPOptionCode.bootFileName] == Array((long + "boot.ipxe").utf8))
        _ = try reply.message.encoded()
    }
}
