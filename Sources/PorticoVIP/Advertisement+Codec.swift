extension Advertisement {
    /// Encodes the VRRP packet (the IP payload) with its checksum computed over the
    /// IPv4 or IPv6 pseudo-header of `source` and `destination` (RFC 5798 §5.2.8).
    public func encoded(
        source: VRRPAddress,
        destination: VRRPAddress
    ) throws(AdvertisementEncodingError) -> [UInt8] {
        let family = source.family
        guard destination.family == family, addresses.allSatisfy({ $0.family == family }) else {
            throw .familyMismatch
        }
        guard (1...255).contains(addresses.count) else { throw .addressCount(addresses.count) }
        let interval = maximumAdvertisementIntervalCentiseconds
        guard (1...Advertisement.maximumIntervalCentiseconds).contains(interval) else {
            throw .intervalOutOfRange(interval)
        }
        var packet: [UInt8] = []
        packet.reserveCapacity(Advertisement.headerLength + addresses.count * family.byteCount)
        packet.append(0x31)  // version 3, type 1
        packet.append(virtualRouterID)
        packet.append(priority)
        packet.append(UInt8(addresses.count))
        packet.append(UInt8(interval >> 8))  // the reserved upper nibble stays zero
        packet.append(UInt8(truncatingIfNeeded: interval))
        packet.append(0)
        packet.append(0)
        for address in addresses { packet.append(contentsOf: address.bytes) }
        let checksum = InternetChecksum.vrrp(packet, source: source, destination: destination)
        packet[6] = UInt8(checksum >> 8)
        packet[7] = UInt8(truncatingIfNeeded: checksum)
        return packet
    }

    /// Decodes and validates a received VRRP packet (the IP payload).
    ///
    /// - Parameters:
    ///   - packet: the bytes after the IP header.
    ///   - source: the IP source address, covered by the checksum.
    ///   - destination: the IP destination (the multicast group, or this node for unicast peers).
    ///   - hopLimit: the received IPv4 TTL or IPv6 hop limit; anything but 255 is rejected.
    public static func decode(
        _ packet: some Collection<UInt8>,
        source: VRRPAddress,
        destination: VRRPAddress,
        hopLimit: UInt8
    ) throws(AdvertisementDecodingError) -> Advertisement {
        guard hopLimit == requiredHopLimit else { throw .hopLimitNot255(hopLimit) }
        guard source.family == destination.family else {
            throw .familyMismatch(source: source, destination: destination)
        }
        let bytes = Array(packet)
        guard bytes.count >= headerLength else { throw .truncated(length: bytes.count) }
        guard bytes[0] >> 4 == 3 else { throw .unsupportedVersion(bytes[0] >> 4) }
        guard bytes[0] & 0x0F == 1 else { throw .unsupportedType(bytes[0] & 0x0F) }
        let count = Int(bytes[3])
        guard count > 0 else { throw .noAddresses }
        let addressLength = source.family.byteCount
        let expected = headerLength + count * addressLength
        guard bytes.count == expected else { throw .lengthMismatch(expected: expected, actual: bytes.count) }
        let received = UInt16(bytes[6]) << 8 | UInt16(bytes[7])
        var zeroed = bytes
        zeroed[6] = 0
        zeroed[7] = 0
        let computed = InternetChecksum.vrrp(zeroed, source: source, destination: destination)
        // 0x0000 and 0xFFFF are the same value in ones' complement arithmetic.
        guard received == computed || (received | computed == 0xFFFF && received & computed == 0) else {
            throw .checksumMismatch(received: received, computed: computed)
        }
        let interval = (UInt16(bytes[4]) << 8 | UInt16(bytes[5])) & maximumIntervalCentiseconds
        guard interval > 0 else { throw .zeroAdvertisementInterval }
        var addresses: [VRRPAddress] = []
        addresses.reserveCapacity(count)
        for index in 0..<count {
            let start = headerLength + index * addressLength
            if let address = VRRPAddress(bytes: bytes[start..<start + addressLength]) {
                addresses.append(address)
            }
        }
        return Advertisement(
            virtualRouterID: bytes[1],
            priority: bytes[2],
            maximumAdvertisementIntervalCentiseconds: interval,
            addresses: addresses
        )
    }
}
