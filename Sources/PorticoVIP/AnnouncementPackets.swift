/// Byte layouts of the announcements a new master sends so that neighbours and switches
/// learn where its addresses live. Pure; the Linux shell sends them.
public enum AnnouncementPackets {
    /// The Ethernet broadcast address.
    public static let broadcast: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
    /// EtherType of ARP.
    public static let arpEtherType: UInt16 = 0x0806

    /// The two forms of gratuitous ARP.
    public enum ARPForm: Hashable, Sendable, CaseIterable {
        /// An ARP request with sender and target IP both the address (RFC 5227 announcement).
        case request
        /// An ARP reply with the same addresses, which some old stacks only honour (MetalLB sends both).
        case reply
    }

    /// A broadcast Ethernet frame carrying a gratuitous ARP for `address` (IPv4) owned by `mac`.
    /// Nil unless `address` is IPv4 and `mac` has 6 bytes.
    public static func gratuitousARP(address: VRRPAddress, mac: [UInt8], form: ARPForm) -> [UInt8]? {
        guard case .ipv4 = address, mac.count == 6 else { return nil }
        var frame = broadcast + mac + [UInt8(arpEtherType >> 8), UInt8(arpEtherType & 0xFF)]
        frame += [0x00, 0x01, 0x08, 0x00, 6, 4]  // Ethernet, IPv4, address lengths
        frame += [0x00, form == .request ? 1 : 2]
        frame += mac + address.bytes
        frame += (form == .request ? [0, 0, 0, 0, 0, 0] : mac) + address.bytes
        return frame
    }

    /// The ICMPv6 body of an unsolicited neighbour advertisement for `address` (IPv6): router 0,
    /// solicited 0, override 1, with the target link-layer address option. The checksum is
    /// left zero: the kernel fills it for ICMPv6 raw sockets. Send to ff02::1 with hop limit 255.
    public static func unsolicitedNeighbourAdvertisement(address: VRRPAddress, mac: [UInt8]) -> [UInt8]? {
        guard case .ipv6 = address, mac.count == 6 else { return nil }
        var message: [UInt8] = [136, 0, 0, 0]  // type, code, checksum
        message += [0x20, 0, 0, 0]  // flags: O
        message += address.bytes
        message += [2, 1] + mac  // option 2 (target link-layer address), 8 bytes
        return message
    }

    /// The all-nodes multicast address that unsolicited advertisements go to.
    public static let allNodes = VRRPAddress.ipv6(high: 0xFF02_0000_0000_0000, low: 1)
}
