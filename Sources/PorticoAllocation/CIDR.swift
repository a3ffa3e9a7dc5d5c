/// A block of addresses written `address/prefix-length`, such as `10.0.0.0/24` or `2001:db8::/64`.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block (host bits cleared).
    public let network: IPAddress
    /// The number of leading bits shared by every address of the block.
    public let prefixLength: Int

    /// The block of `prefixLength` bits containing `address` (host bits are cleared).
    /// - Precondition: `prefixLength` is between 0 and the family's bit width.
    public init(containing address: IPAddress, prefixLength: Int) {
        precondition((0...address.family.bitWidth).contains(prefixLength), "invalid prefix length \(prefixLength)")
        let hostBits = address.family.bitWidth - prefixLength
        self.network = IPAddress(family: address.family, value: address.value.clearingLowBits(hostBits))
        self.prefixLength = prefixLength
    }

    /// Parses `10.0.0.0/24`; like Go's `net.ParseCIDR` (and so MetalLB), host bits are allowed
    /// and cleared (`10.0.0.7/24` is `10.0.0.0/24`). Nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(String(parts[0])),
            (1...3).contains(parts[1].count), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
            let length = Int(parts[1]), length <= address.family.bitWidth
        else { return nil }
        self.init(containing: address, prefixLength: length)
    }

    /// The family of the block's addresses.
    public var family: IPFamily { network.family }

    /// The first address of the block.
    public var first: IPAddress { network }

    /// The last address of the block.
    public var last: IPAddress {
        IPAddress(family: family, value: network.value.settingLowBits(family.bitWidth - prefixLength))
    }

    /// Whether `address` lies in the block.
    public func contains(_ address: IPAddress) -> Bool {
        address.family == family && first <= address && address <= last
    }

    public var description: String { "\(network)/\(prefixLength)" }
}
