/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of
/// 16-bit big-endian words.
enum InternetChecksum {
    /// Adds `bytes` to a running 32-bit sum (an odd trailing byte is padded with zero).
    static func add(_ bytes: [UInt8], to sum: inout UInt32) {
        var index = 0
        while index + 1 < bytes.count {
            sum &+= UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum &+= UInt32(bytes[index]) << 8 }
        // Fold now so that very long inputs cannot overflow the accumulator.
        sum = (sum & 0xFFFF) + (sum >> 16)
    }

    /// Folds the carries and complements.
    static func finish(_ sum: UInt32) -> UInt16 {
        var folded = sum
        while folded >> 16 != 0 { folded = (folded & 0xFFFF) + (folded >> 16) }
        return ~UInt16(folded)
    }

    /// The checksum of `bytes`.
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        add(bytes, to: &sum)
        return finish(sum)
    }

    /// The VRRPv3 checksum of `packet` (its checksum field zero) with the IPv4 pseudo-header
    /// (source, destination, zero, protocol, length) or the IPv6 one (source, destination,
    /// 32-bit upper-layer length, three zero bytes, next header) of RFC 5798 §5.2.8.
    static func vrrp(_ packet: [UInt8], source: VRRPAddress, destination: VRRPAddress) -> UInt16 {
        var sum: UInt32 = 0
        add(source.bytes, to: &sum)
        add(destination.bytes, to: &sum)
        let length = UInt32(packet.count)
        switch source.family {
        case .ipv4:
            add([0, Advertisement.ipProtocol, UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)], to: &sum)
        case .ipv6:
            let lengthBytes = (0..<4).map { UInt8(truncatingIfNeeded: length >> (24 - 8 * $0)) }
            add(lengthBytes + [0, 0, 0, Advertisement.ipProtocol], to: &sum)
        }
        add(packet, to: &sum)
        return finish(sum)
    }
}
