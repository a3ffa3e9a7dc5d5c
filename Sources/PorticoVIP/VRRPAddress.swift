/// An IPv4 or IPv6 address as carried in VRRP advertisements: a virtual address, or the
/// primary address of a router that sends them.
///
/// Kept independent of other Portico modules so that the VRRP core has no dependencies;
/// convert from `PorticoAllocation.IPAddress` through its canonical text.
/// Addresses order by family (IPv4 first), then numerically, which is the order RFC 5798
/// uses to break ties between routers of equal priority.
public enum VRRPAddress: Hashable, Comparable, Sendable {
    /// An IPv4 address from its 32-bit value (`0x0A00_0001` is `10.0.0.1`).
    case ipv4(UInt32)
    /// An IPv6 address from its upper and lower 64 bits.
    case ipv6(high: UInt64, low: UInt64)

    /// An address family.
    public enum Family: Hashable, Sendable, CaseIterable {
        case ipv4
        case ipv6

        /// The length of an address of this family in bytes.
        public var byteCount: Int { self == .ipv4 ? 4 : 16 }

        /// The VRRP multicast group: `224.0.0.18` or `ff02::12`.
        public var multicastGroup: VRRPAddress {
            self == .ipv4 ? .ipv4(0xE000_0012) : .ipv6(high: 0xFF02_0000_0000_0000, low: 0x12)
        }
    }

    /// The family of the address.
    public var family: Family {
        switch self {
        case .ipv4: .ipv4
        case .ipv6: .ipv6
        }
    }

    /// The address in network byte order (4 or 16 bytes).
    public var bytes: [UInt8] {
        switch self {
        case .ipv4(let value):
            return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .ipv6(let high, let low):
            let upper = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            return upper + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    /// An address from 4 (IPv4) or 16 (IPv6) bytes in network byte order; nil for other lengths.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            self = .ipv4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            let high = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes.dropFirst(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .ipv6(high: high, low: low)
        default:
            return nil
        }
    }

    /// True for `fe80::/10`, the only IPv6 source RFC 5798 allows for advertisements.
    public var isIPv6LinkLocal: Bool {
        if case .ipv6(let high, _) = self { return high >> 54 == 0x3FA }
        return false
    }
}
