/// An IPv4 address as it travels in BOOTP/DHCP fields (`ciaddr`, `yiaddr`, option 54, ...).
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    /// The address as a host-order integer (`192.0.2.91` is `0xC000_025B`).
    public var rawValue: UInt32

    /// 0.0.0.0.
    public static let any = IPv4Address(rawValue: 0)
    /// 255.255.255.255, the limited broadcast address.
    public static let broadcast = IPv4Address(rawValue: 0xFFFF_FFFF)

    /// The address with host-order integer value `rawValue`.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// The address `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text (`"192.0.2.1"`); `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt8(part)
            else { return nil }
            value = value << 8 | UInt32(octet)
        }
        self.rawValue = value
    }

    /// The four network-order bytes.
    public var bytes: [UInt8] {
        [
            UInt8(self.rawValue >> 24), UInt8(self.rawValue >> 16 & 0xFF), UInt8(self.rawValue >> 8 & 0xFF),
            UInt8(self.rawValue & 0xFF),
        ]
    }

    /// Whether this is 0.0.0.0.
    public var isAny: Bool { self.rawValue == 0 }

    /// Dotted-quad text.
    public var description: String {
        self.bytes.map(String.init).joined(separator: ".")
    }
}
