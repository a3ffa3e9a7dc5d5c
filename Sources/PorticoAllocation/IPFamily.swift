/// An IP address family, spelled as in a Kubernetes Service's `spec.ipFamilies`.
public enum IPFamily: String, Hashable, Sendable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"

    /// The number of bits in an address of this family.
    public var bitWidth: Int { self == .ipv4 ? 32 : 128 }

    /// The other family.
    public var other: IPFamily { self == .ipv4 ? .ipv6 : .ipv4 }

    public var description: String { rawValue }

    public static func < (lhs: IPFamily, rhs: IPFamily) -> Bool { lhs == .ipv4 && rhs == .ipv6 }
}

/// A Service's `spec.ipFamilyPolicy`.
public enum IPFamilyPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// One address, of the Service's first IP family (the default).
    case singleStack = "SingleStack"
    /// One address of each family when the pool has both, otherwise one.
    case preferDualStack = "PreferDualStack"
    /// One address of each family, from the same pool.
    case requireDualStack = "RequireDualStack"
}
