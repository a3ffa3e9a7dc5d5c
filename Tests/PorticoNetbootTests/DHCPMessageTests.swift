import Testing

@testable import PorticoNetboot

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite struct DHCPMessageTests {
    @Test func roundTripsEveryFixedField() throws {
        var message = DHCPFixtures.pxeDiscover()
        message.hops = 2
        message.clientAddress = IPv4Address(10, 0, 0, 5)
        message.yourAddress = IPv4Address(10, 0, 0, 6)
        message.nextServerAddress = IPv4Address(10, 0, 0, 7)
        message.relayAgentAddress = IPv4Address(10, 0, 0, 8)
        message.serverName = "boot"
        message.bootFileName = "undionly.kpxe"
        let bytes = try message.encoded()
        #expect(bytes.count >= DHCPMessage.minimumBOOTPLength)
        #expect(try DHCPMessage(decoding: [UInt8](bytes.prefix(240)) + [255]).encoded().count == 300)
        #expect(Array(bytes[0..<4]) == [1, 1, 6, 2])
        #expect(Array(bytes[4..<8]) == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(Array(bytes[10..<12]) == [0x80, 0x00])
        #expect(Array(bytes[236..<240]) == [99, 130, 83, 99])
        let decoded = try DHCPMessage(decoding: bytes)
        #expect(decoded == message)
        #expect(decoded.isBroadcast)
        #expect(decoded.clientHardwareAddress.formatted(separator: "-") == "52-54-00-12-34-56")
    }

    @Test func typedAccessorsReadPXEOptions() throws {
        let message = try DHCPMessage(decoding: DHCPFixtures.pxeDiscover(architecture: 7).encoded())
        #expect(try message.messageType == .discover)
        #expect(message.vendorClassIdentifier == "PXEClient:Arch:00007:UNDI:002001")
        #expect(try message.clientArchitectures == [.x64UEFI])
        #expect(try message.clientNetworkInterface == ClientNetworkInterface(major: 2, minor: 1))
        #expect(try message.clientMachineIdentifier?.description == "01020304-0506-0708-090a-0b0c0d0e0f10")
        #expect(try message.serverIdentifier == nil)
        #expect(try message.userClass == nil)
    }

    @Test func userClassReadsRFC3004AndPlainString() throws {
        let plain = try DHCPUserClass(decoding: Array("iPXE".utf8))
        #expect(!plain.isRFC3004Encoded)
        #expect(plain.contains("iPXE"))
        let listed = try DHCPUserClass(decoding: [4] + Array("iPXE".utf8) + [3] + Array("foo".utf8))
        #expect(listed.isRFC3004Encoded)
        #expect(listed.names == ["iPXE", "foo"])
        #expect(throws: DHCPDecodingError.invalidOptionLength(code: 77, length: 0)) {
            try DHCPUserClass(decoding: [])
        }
    }

    @Test func malformedOptionsAreTypedErrors() throws {
        var message = DHCPFixtures.pxeDiscover()
        message.options[DHCPOptionCode.messageType] = [1, 2]
        #expect(throws: DHCPDecodingError.invalidOptionLength(code: 53, length: 2)) { try message.messageType }
        message.options[DHCPOptionCode.clientArchitecture] = [0]
        #expect(throws: DHCPDecodingError.invalidOptionLength(code: 93, length: 1)) {
            try message.clientArchitectures
        }
        message.options[DHCPOptionCode.clientMachineIdentifier] = [1] + [UInt8](repeating: 0, count: 16)
        #expect(throws: DHCPDecodingError.invalidOptionValue(code: 97)) { try message.clientMachineIdentifier }
        message.options[DHCPOptionCode.clientNetworkInterface] = [2, 1, 0]
        #expect(throws: DHCPDecodingError.invalidOptionValue(code: 94)) { try message.clientNetworkInterface }
        message.options[DHCPOptionCode.vendorSpecificInformation] = [6, 5, 8]
        #expect(throws: DHCPDecodingError.optionOverrunsArea(code: 6, area: .encapsulated(43))) {
            try message.vendorSpecificInformation
        }
    }

    @Test func pxeSubOptionsAndIPXEEncapsulation() throws {
        var message = DHCPFixtures.pxeDiscover()
        message.options[DHCPOptionCode.vendorSpecificInformation] = [0, 6, 1, 8, 255]
        message.options[DHCPOptionCode.ipxeEncapsulated] = [19, 1, 1, 255]
        #expect(try message.pxeDiscoveryControl == .useBootFileDirectly)
        #expect(try message.ipxeEncapsulatedOptions?.options[19] == [1])
    }

    @Test func wholeMessageErrors() throws {
        let good = try DHCPFixtures.pxeDiscover().encoded()
        #expect(throws: DHCPDecodingError.truncated(length: 239)) { try DHCPMessage(decoding: good.prefix(239)) }
        var bad = good
        bad[0] = 3
        #expect(throws: DHCPDecodingError.unknownOperation(3)) { try DHCPMessage(decoding: bad) }
        bad = good
        bad[2] = 17
        #expect(throws: DHCPDecodingError.hardwareAddressTooLong(17)) { try DHCPMessage(decoding: bad) }
        bad = good
        bad[236] = 0
        #expect(throws: DHCPDecodingError.badMagicCookie(0x0082_5363)) { try DHCPMessage(decoding: bad) }
        // An option whose length runs past the end of the packet.
        bad = Array(good.prefix(240)) + [60, 10, 65]
        #expect(throws: DHCPDecodingError.optionOverrunsArea(code: 60, area: .options)) {
            try DHCPMessage(decoding: bad)
        }
        // A code byte with no length byte.
        bad = Array(good.prefix(240)) + [60]
        #expect(throws: DHCPDecodingError.optionOverrunsArea(code: 60, area: .options)) {
            try DHCPMessage(decoding: bad)
        }
    }

    @Test func missingEndOptionIsAccepted() throws {
        let bytes = Array(try DHCPFixtures.pxeDiscover().encoded().prefix(240)) + [53, 1, 1]
        #expect(try DHCPMessage(decoding: bytes).messageType == .discover)
    }

    @Test func overloadedFileAndServerNameAreReadAsOptionsInOrder() throws {
        var bytes = Array(try DHCPFixtures.pxeDiscover().encoded().prefix(240))
        bytes += [52, 1, 3, 60, 2, 65, 66, 255]
        // file (108..<236) continues option 60, then sname (44..<108) continues it again.
        bytes.replaceSubrange(108..<113, with: [60, 1, 67, 255, 0])
        bytes.replaceSubrange(44..<48, with: [60, 1, 68, 255])
        let message = try DHCPMessage(decoding: bytes)
        #expect(message.vendorClassIdentifier == "ABCD")
        #expect(message.bootFileName.isEmpty)
        #expect(message.serverName.isEmpty)

        var invalid = bytes
        invalid[242] = 4
        #expect(throws: DHCPDecodingError.invalidOverload([4])) { try DHCPMessage(decoding: invalid) }
        invalid = bytes
        invalid.replaceSubrange(108..<111, with: [52, 1, 1])
        #expect(throws: DHCPDecodingError.invalidOverload([1])) { try DHCPMessage(decoding: invalid) }
    }

    @Test func repeatedOptionsAreJoinedAndLongOptionsSplit() throws {
        var message = DHCPFixtures.pxeDiscover()
        let long = [UInt8](repeating: 0x41, count: 300)
        message.options[DHCPOptionCode.vendorClassIdentifier] = long
        let bytes = try message.encoded()
        #expect(try DHCPMessage(decoding: bytes).options[DHCPOptionCode.vendorClassIdentifier] == long)
    }

    @Test func encodingRejectsOverlongFields() {
        var message = DHCPFixtures.pxeDiscover()
        message.bootFileName = String(repeating: "x", count: 128)
        #expect(throws: DHCPEncodingError.fieldTooLong(field: "file", length: 128)) { try message.encoded() }
        message.bootFileName = ""
        message.options[255] = [1]
        #expect(throws: DHCPEncodingError.reservedOptionCode(255)) { try message.encoded() }
    }

    @Test func fuzzedInputNeverTraps() throws {
        var random = SeededGenerator(seed: 0x5EED)
        let seeds = try [0, 6, 7, 11, 0x10].map { try DHCPFixtures.pxeDiscover(architecture: $0).encoded() }
        let responder = ProxyDHCPResponder(
            serverAddress: IPv4Address(192, 0, 2, 1),
            httpBase: URL(string: "http://192.0.2.1/")!
        )
        var decodedCount = 0
        var failedCount = 0
        for round in 0..<10_000 {
            var bytes = seeds[round % seeds.count]
            switch round % 4 {
            case 0:
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            case 1:
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
            case 2:
                let start = Int.random(in: 236..<bytes.count, using: &random)
                bytes.replaceSubrange(start..., with: random.bytes(count: Int.random(in: 0...80, using: &random)))
            default:
                bytes = random.bytes(count: Int.random(in: 0...600, using: &random))
                if bytes.count >= 240, Bool.random(using: &random) {
                    bytes.replaceSubrange(236..<240, with: [99, 130, 83, 99])
                    bytes[0] = 1
                    bytes[2] = 6
                }
            }
            do {
                let message = try DHCPMessage(decoding: bytes)
                decodedCount += 1
                _ = try? message.messageType
                _ = try? message.serverIdentifier
                _ = try? message.userClass
                _ = try? message.clientArchitectures
                _ = try? message.clientNetworkInterface
                _ = try? message.clientMachineIdentifier
                _ = try? message.pxeDiscoveryControl
                _ = try? message.ipxeEncapsulatedOptions
                _ = message.vendorClassIdentifier
                for port in [ProxyDHCPPort.dhcp, .pxeBootServer] {
                    let source = UDPEndpoint(address: .any, port: 68)
                    if let reply = responder.answer(to: message, receivedOn: port, from: source) {
                        _ = try reply.message.encoded()
                    }
                }
            } catch is DHCPDecodingError {
                failedCount += 1
            }
        }
        #expect(decodedCount > 500)
        #expect(failedCount > 500)
    }
}
