/// A VRRPv3 advertisement (RFC 5798 §5.2): what a master multicasts every advertisement
/// interval, and what a resigning master sends once with priority 0.
public struct Advertisement: Hashable, Sendable {
    /// The IP protocol number of VRRP.
    public static let ipProtocol: UInt8 = 112
    /// The only TTL / hop limit VRRP sends and accepts (RFC 5798 §5.1.1.3, §5.1.2.3).
    public static let requiredHopLimit: UInt8 = 255
    /// The largest interval the 12-bit field can carry, in centiseconds (40.95 s).
    public static let maximumIntervalCentiseconds: UInt16 = 0x0FFF
    /// Length of the fixed header before the addresses.
    public static let headerLength = 8

    /// The virtual router this advertisement belongs to (1-255).
    public var virtualRouterID: UInt8
    /// The sender's priority: 255 for the address owner, 0 for a master that resigns.
    public var priority: UInt8
    /// The sender's advertisement interval in centiseconds (12 bits, 1-4095).
    public var maximumAdvertisementIntervalCentiseconds: UInt16
    /// The virtual addresses, all of one family (1-255 of them).
    public var addresses: [VRRPAddress]

    /// An advertisement from its fields.
    public init(
        virtualRouterID: UInt8,
        priority: UInt8,
        maximumAdvertisementIntervalCentiseconds: UInt16,
        addresses: [VRRPAddress]
    ) {
        self.virtualRouterID = virtualRouterID
        self.priority = priority
        self.maximumAdvertisementIntervalCentiseconds = maximumAdvertisementIntervalCentiseconds
        self.addresses = addresses
    }

    /// The advertisement interval as a duration.
    public var maximumAdvertisementInterval: Duration {
        .milliseconds(Int(maximumAdvertisementIntervalCentiseconds) * 10)
    }
}

/// Why a received VRRP packet was rejected. Every malformed input maps to one of these;
/// decoding never traps.
public enum AdvertisementDecodingError: Error, Hashable, Sendable {
    /// The IP TTL / hop limit was not 255, so the packet may come from off the link.
    case hopLimitNot255(UInt8)
    /// The source and destination addresses are of different families.
    case familyMismatch(source: VRRPAddress, destination: VRRPAddress)
    /// Shorter than the 8-byte header.
    case truncated(length: Int)
    /// The version nibble was not 3.
    case unsupportedVersion(UInt8)
    /// The type nibble was not 1 (ADVERTISEMENT).
    case unsupportedType(UInt8)
    /// The address count was zero (RFC 5798 §5.2.5: the minimum is 1).
    case noAddresses
    /// The length does not match the header plus `count` addresses of the family.
    case lengthMismatch(expected: Int, actual: Int)
    /// The checksum over the pseudo-header and packet does not verify.
    case checksumMismatch(received: UInt16, computed: UInt16)
    /// A zero advertisement interval, which would make a backup take over instantly.
    case zeroAdvertisementInterval
}

/// Why an advertisement could not be encoded.
public enum AdvertisementEncodingError: Error, Hashable, Sendable {
    /// Source, destination and advertised addresses must all be of one family.
    case familyMismatch
    /// The address count must be 1-255.
    case addressCount(Int)
    /// The interval must be 1-4095 centiseconds.
    case intervalOutOfRange(UInt16)
}
