import PorticoAllocation

/// Text forms come from PorticoAllocation's `IPAddress`, so the code base has one parser
/// and one formatter for addresses (strict parsing; RFC 5952 formatting).
extension VRRPAddress: CustomStringConvertible, LosslessStringConvertible {
    /// Parses `10.0.20.200`, `2001:db8::1` or `::ffff:10.0.0.1`; nil for anything else
    /// (no zones, prefixes, brackets or leading zeros in IPv4 octets).
    public init?(_ text: String) {
        guard let address = IPAddress(text) else { return nil }
        let bits = address.bits
        switch address.family {
        case .ipv4: self = .ipv4(UInt32(truncatingIfNeeded: bits.low))
        case .ipv6: self = .ipv6(high: bits.high, low: bits.low)
        }
    }

    /// Dotted quad for IPv4, RFC 5952 canonical text for IPv6.
    public var description: String {
        switch self {
        case .ipv4(let value): IPAddress(ipv4: value).description
        case .ipv6(let high, let low): IPAddress(ipv6High: high, low: low).description
        }
    }
}
