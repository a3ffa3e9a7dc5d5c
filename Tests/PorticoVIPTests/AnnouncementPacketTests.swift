import PorticoVIP
import Testing

@Suite("Announcement and netlink byte layouts")
struct AnnouncementPacketTests {
    let mac: [UInt8] = [0x02, 0x00, 0x5E, 0x10, 0x20, 0x30]

    @Test func gratuitousARPRequestAndReply() throws {
        let request = try #require(AnnouncementPackets.gratuitousARP(address: virtualAddress, mac: mac, form: .request))
        #expect(request.count == 42)
        #expect(Array(request[0..<6]) == AnnouncementPackets.broadcast)
        #expect(Array(request[6..<12]) == mac)
        #expect(Array(request[12..<22]) == [0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1])
        #expect(Array(request[22..<28]) == mac)
        #expect(Array(request[28..<32]) == [10, 0, 0, 100])
        #expect(Array(request[32..<38]) == [0, 0, 0, 0, 0, 0])
        #expect(Array(request[38..<42]) == [10, 0, 0, 100])
        let reply = try #require(AnnouncementPackets.gratuitousARP(address: virtualAddress, mac: mac, form: .reply))
        #expect(reply[21] == 2)
        #expect(Array(reply[32..<38]) == mac)
        #expect(
            AnnouncementPackets.gratuitousARP(address: VRRPAddress(literal: "::1"), mac: mac, form: .request) == nil
        )
    }

    @Test func unsolicitedNeighbourAdvertisement() throws {
        let target = VRRPAddress(literal: "2001:db8::7")
        let message = try #require(AnnouncementPackets.unsolicitedNeighbourAdvertisement(address: target, mac: mac))
        #expect(message.count == 32)
        #expect(Array(message[0..<8]) == [136, 0, 0, 0, 0x20, 0, 0, 0])  // S=0, O=1, R=0
        #expect(Array(message[8..<24]) == target.bytes)
        #expect(Array(message[24..<32]) == [2, 1] + mac)
        #expect(AnnouncementPackets.allNodes.description == "ff02::1")
    }

    @Test func parsesIPv4HeaderOfRawPackets() throws {
        let payload = try advert(priority: 100).encoded(source: localAddress, destination: .ipv4(0xE000_0012))
        let total = 20 + payload.count
        var packet: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0x40, 0, 255, 112, 0, 0]
        packet += localAddress.bytes + [224, 0, 0, 18] + payload
        let view = try #require(IPv4PacketView(packet + [0xEE]))  // trailing link padding is cut off
        #expect(view.timeToLive == 255)
        #expect(view.ipProtocol == 112)
        #expect(view.source == localAddress)
        #expect(Array(view.payload) == payload)
        var fragment = packet
        fragment[6] = 0x20  // more fragments
        #expect(IPv4PacketView(fragment) == nil)
        #expect(IPv4PacketView(Array(packet.prefix(19))) == nil)
        var generator = SeededGenerator(seed: 4)
        for _ in 0..<5_000 {
            let random = (0..<Int.random(in: 0...60, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            _ = IPv4PacketView(random)
        }
    }

    @Test func netlinkAddRequestForIPv6UsesHostRouteAndNoDAD() {
        let request = NetlinkAddressRequest(
            operation: .add,
            address: VRRPAddress(literal: "2001:db8::7"),
            interfaceIndex: 3,
            sequence: 9
        )
        let bytes = request.bytes
        #expect(bytes.count == 16 + 8 + 20 + 20 + 8)
        #expect(Array(bytes[0..<4]) == [72, 0, 0, 0])
        #expect(Array(bytes[4..<6]) == [20, 0])  // RTM_NEWADDR
        #expect(Array(bytes[6..<8]) == [0x05, 0x05])  // REQUEST | ACK | REPLACE | CREATE
        #expect(Array(bytes[8..<12]) == [9, 0, 0, 0])
        #expect(Array(bytes[16..<24]) == [10, 128, 0x02, 0, 3, 0, 0, 0])  // AF_INET6, /128, NODAD, index 3
        #expect(Array(bytes[24..<28]) == [20, 0, 2, 0])  // IFA_LOCAL
        #expect(Array(bytes[64..<72]) == [8, 0, 8, 0, 0x02, 0x02, 0, 0])  // IFA_FLAGS: NODAD | NOPREFIXROUTE
    }

    @Test func netlinkDeleteRequestForIPv4() {
        let bytes = NetlinkAddressRequest(operation: .remove, address: virtualAddress, interfaceIndex: 2, sequence: 1)
            .bytes
        #expect(Array(bytes[4..<8]) == [21, 0, 0x05, 0])  // RTM_DELADDR, REQUEST | ACK
        #expect(Array(bytes[16..<20]) == [2, 32, 0, 0])
        #expect(Array(bytes[24..<32]) == [8, 0, 2, 0, 10, 0, 0, 100])
    }

    @Test func readsNetlinkAcknowledgements() {
        func error(_ code: Int32, sequence: UInt32) -> [UInt8] {
            let errno = UInt32(bitPattern: code)
            return [36, 0, 0, 0, 2, 0, 0, 0] + (0..<4).map { UInt8(truncatingIfNeeded: sequence >> (8 * $0)) }
                + [0, 0, 0, 0] + (0..<4).map { UInt8(truncatingIfNeeded: errno >> (8 * $0)) }
                + [UInt8](repeating: 0, count: 16)
        }
        #expect(NetlinkAddressRequest.acknowledgement(in: error(0, sequence: 5), sequence: 5) == 0)
        #expect(NetlinkAddressRequest.acknowledgement(in: error(-17, sequence: 5), sequence: 5) == 17)
        #expect(NetlinkAddressRequest.acknowledgement(in: error(-17, sequence: 5), sequence: 6) == nil)
        #expect(NetlinkAddressRequest.acknowledgement(in: [1, 2, 3], sequence: 5) == nil)
    }
}
