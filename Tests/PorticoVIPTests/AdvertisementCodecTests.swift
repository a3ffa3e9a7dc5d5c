import PorticoVIP
import Testing

@Suite("VRRPv3 advertisement codec")
struct AdvertisementCodecTests {
    let ipv4Source = VRRPAddress(literal: "192.168.1.2")
    let ipv4Group = VRRPAddress.Family.ipv4.multicastGroup
    let ipv6Source = VRRPAddress(literal: "fe80::1")
    let ipv6Group = VRRPAddress.Family.ipv6.multicastGroup

    var ipv4Advertisement: Advertisement {
        Advertisement(
            virtualRouterID: 51,
            priority: 200,
            maximumAdvertisementIntervalCentiseconds: 100,
            addresses: [VRRPAddress(literal: "192.168.1.10"), VRRPAddress(literal: "192.168.1.11")]
        )
    }

    var ipv6Advertisement: Advertisement {
        Advertisement(
            virtualRouterID: 7,
            priority: 100,
            maximumAdvertisementIntervalCentiseconds: 4095,
            addresses: [VRRPAddress(literal: "2001:db8::7")]
        )
    }

    /// Bytes and checksums computed independently (Python, RFC 1071 over the §5.2.8 pseudo-header).
    @Test func encodesIPv4ToKnownBytes() throws {
        let bytes = try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group)
        #expect(hex(bytes) == "3133c8020064e0c1c0a8010ac0a8010b")
    }

    @Test func encodesIPv6ToKnownBytes() throws {
        let bytes = try ipv6Advertisement.encoded(source: ipv6Source, destination: ipv6Group)
        #expect(hex(bytes) == "310764010fff2f1920010db8000000000000000000000007")
    }

    @Test func roundTripsBothFamilies() throws {
        let ipv4 = try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group)
        let decoded4 = try Advertisement.decode(ipv4, source: ipv4Source, destination: ipv4Group, hopLimit: 255)
        #expect(decoded4 == ipv4Advertisement)
        #expect(decoded4.maximumAdvertisementInterval == .seconds(1))
        let ipv6 = try ipv6Advertisement.encoded(source: ipv6Source, destination: ipv6Group)
        let decoded6 = try Advertisement.decode(ipv6, source: ipv6Source, destination: ipv6Group, hopLimit: 255)
        #expect(decoded6 == ipv6Advertisement)
    }

    @Test func checksumCoversThePseudoHeader() throws {
        let bytes = try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group)
        let otherSource = VRRPAddress(literal: "192.168.1.3")
        #expect(throws: AdvertisementDecodingError.self) {
            try Advertisement.decode(bytes, source: otherSource, destination: ipv4Group, hopLimit: 255)
        }
        let unicast = VRRPAddress(literal: "192.168.1.4")
        #expect(throws: AdvertisementDecodingError.self) {
            try Advertisement.decode(bytes, source: ipv4Source, destination: unicast, hopLimit: 255)
        }
    }

    @Test func ignoresReservedBits() throws {
        var bytes = try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group)
        bytes[4] |= 0xF0  // reserved: ignored on reception, but covered by the checksum
        let decoded = try Advertisement.decode(
            try fixChecksum(bytes),
            source: ipv4Source,
            destination: ipv4Group,
            hopLimit: 255
        )
        #expect(decoded.maximumAdvertisementIntervalCentiseconds == 100)
    }

    @Test(arguments: [0, 1, 64, 254] as [UInt8])
    func rejectsHopLimitOtherThan255(hopLimit: UInt8) throws {
        let bytes = try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group)
        #expect(throws: AdvertisementDecodingError.hopLimitNot255(hopLimit)) {
            try Advertisement.decode(bytes, source: ipv4Source, destination: ipv4Group, hopLimit: hopLimit)
        }
    }

    @Test func rejectsEachMalformedField() throws {
        let valid = try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group)
        func decode(_ bytes: [UInt8]) throws(AdvertisementDecodingError) {
            _ = try Advertisement.decode(bytes, source: ipv4Source, destination: ipv4Group, hopLimit: 255)
        }
        #expect(throws: AdvertisementDecodingError.truncated(length: 7)) { try decode(Array(valid.prefix(7))) }
        var version2 = valid
        version2[0] = 0x21
        #expect(throws: AdvertisementDecodingError.unsupportedVersion(2)) { try decode(version2) }
        var type2 = valid
        type2[0] = 0x32
        #expect(throws: AdvertisementDecodingError.unsupportedType(2)) { try decode(type2) }
        var noAddresses = valid
        noAddresses[3] = 0
        #expect(throws: AdvertisementDecodingError.noAddresses) { try decode(noAddresses) }
        var threeAddresses = valid
        threeAddresses[3] = 3
        #expect(throws: AdvertisementDecodingError.lengthMismatch(expected: 20, actual: 16)) {
            try decode(threeAddresses)
        }
        #expect(throws: AdvertisementDecodingError.lengthMismatch(expected: 16, actual: 17)) { try decode(valid + [0]) }
        var corrupted = valid
        corrupted[2] = 201
        #expect(throws: AdvertisementDecodingError.checksumMismatch(received: 0xE0C1, computed: 0xDFC1)) {
            try decode(corrupted)
        }
        #expect(throws: AdvertisementDecodingError.familyMismatch(source: ipv4Source, destination: ipv6Group)) {
            try Advertisement.decode(valid, source: ipv4Source, destination: ipv6Group, hopLimit: 255)
        }
        // An IPv4-sized packet received over IPv6 has the wrong length for its count.
        #expect(throws: AdvertisementDecodingError.lengthMismatch(expected: 40, actual: 16)) {
            try Advertisement.decode(valid, source: ipv6Source, destination: ipv6Group, hopLimit: 255)
        }
    }

    @Test func rejectsZeroInterval() throws {
        var bytes = try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group)
        bytes[4] = 0x10  // only the reserved nibble set: the 12-bit interval is zero
        bytes[5] = 0
        #expect(throws: AdvertisementDecodingError.zeroAdvertisementInterval) {
            try Advertisement.decode(try fixChecksum(bytes), source: ipv4Source, destination: ipv4Group, hopLimit: 255)
        }
    }

    @Test func refusesToEncodeInvalidAdvertisements() {
        var mixed = ipv4Advertisement
        mixed.addresses.append(VRRPAddress(literal: "2001:db8::1"))
        #expect(throws: AdvertisementEncodingError.familyMismatch) {
            try mixed.encoded(source: ipv4Source, destination: ipv4Group)
        }
        var empty = ipv4Advertisement
        empty.addresses = []
        #expect(throws: AdvertisementEncodingError.addressCount(0)) {
            try empty.encoded(source: ipv4Source, destination: ipv4Group)
        }
        var slow = ipv4Advertisement
        slow.maximumAdvertisementIntervalCentiseconds = 4096
        #expect(throws: AdvertisementEncodingError.intervalOutOfRange(4096)) {
            try slow.encoded(source: ipv4Source, destination: ipv4Group)
        }
    }

    /// Every single-bit error in a valid packet is detected (the Internet checksum guarantees it).
    @Test func detectsEverySingleBitFlip() throws {
        for (advertisement, source, group) in [
            (ipv4Advertisement, ipv4Source, ipv4Group), (ipv6Advertisement, ipv6Source, ipv6Group),
        ] {
            let valid = try advertisement.encoded(source: source, destination: group)
            for bit in 0..<(valid.count * 8) {
                var flipped = valid
                flipped[bit / 8] ^= 1 << (bit % 8)
                #expect(throws: AdvertisementDecodingError.self) {
                    try Advertisement.decode(flipped, source: source, destination: group, hopLimit: 255)
                }
            }
        }
    }

    /// Random bytes, and random mutations of valid packets, only ever produce typed errors or
    /// advertisements that re-encode to the same bytes.
    @Test func fuzzedInputNeverTraps() throws {
        var generator = SeededGenerator(seed: 0x5798)
        let seeds = [
            try ipv4Advertisement.encoded(source: ipv4Source, destination: ipv4Group),
            try ipv6Advertisement.encoded(source: ipv6Source, destination: ipv6Group),
        ]
        var accepted = 0
        for iteration in 0..<20_000 {
            let ipv6 = Bool.random(using: &generator)
            let source = ipv6 ? ipv6Source : ipv4Source
            let group = ipv6 ? ipv6Group : ipv4Group
            var bytes: [UInt8]
            if iteration % 2 == 0 {
                let length = Int.random(in: 0...80, using: &generator)
                bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if length > 0 && Bool.random(using: &generator) { bytes[0] = 0x31 }
            } else {
                bytes = seeds[ipv6 ? 1 : 0]
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes[index] = UInt8.random(in: 0...255, using: &generator)
                }
                if Bool.random(using: &generator) { bytes = try fixChecksum(bytes, source: source, group: group) }
            }
            do {
                let decoded = try Advertisement.decode(bytes, source: source, destination: group, hopLimit: 255)
                accepted += 1
                var reencoded = try decoded.encoded(source: source, destination: group)
                reencoded[4] |= bytes[4] & 0xF0  // the reserved nibble is ignored on reception
                #expect(try fixChecksum(reencoded, source: source, group: group) == bytes)
            } catch {
                // A typed error is the expected outcome for most inputs.
            }
        }
        #expect(accepted > 100)
    }

    private func fixChecksum(_ bytes: [UInt8]) throws -> [UInt8] {
        try fixChecksum(bytes, source: ipv4Source, group: ipv4Group)
    }

    /// Recomputes the checksum of `bytes` independently of the code under test.
    private func fixChecksum(_ bytes: [UInt8], source: VRRPAddress, group: VRRPAddress) throws -> [UInt8] {
        guard bytes.count >= 8 else { return bytes }
        var copy = bytes
        copy[6] = 0
        copy[7] = 0
        var sum: UInt32 = 0
        let pseudoHeader: [UInt8]
        let length = UInt32(copy.count)
        switch source.family {
        case .ipv4:
            pseudoHeader =
                source.bytes + group.bytes + [0, 112, UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        case .ipv6:
            pseudoHeader =
                source.bytes + group.bytes
                + [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
                + [0, 0, 0, 112]
        }
        var all = pseudoHeader + copy
        if all.count % 2 == 1 { all.append(0) }
        for word in stride(from: 0, to: all.count, by: 2) { sum += UInt32(all[word]) << 8 | UInt32(all[word + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        copy[6] = UInt8(checksum >> 8)
        copy[7] = UInt8(checksum & 0xFF)
        return copy
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0 >> 4, radix: 16) + String($0 & 0xF, radix: 16) }.joined()
    }
}
