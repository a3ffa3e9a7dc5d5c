/// An IPv4 or IPv6 address.
///
/// Parsing is strict (no leading zeros in IPv4 octets, no zone, no brackets); formatting is
/// canonical: dotted quad for IPv4, RFC 5952 for IPv6 (lower case, longest run of two or more
/// zero groups shortened to `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`).
/// Addresses order by family (IPv4 first), then numerically.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    /// The address family.
    public let family: IPFamily
    let value: AddressValue

    init(family: IPFamily, value: AddressValue) {
        self.family = family
        self.value = value
    }

    /// An IPv4 address from its 32-bit value (`0x0A00_0001` is `10.0.0.1`).
    public init(ipv4 value: UInt32) {
        self.init(family: .ipv4, value: AddressValue(high: 0, low: UInt64(value)))
    }

    /// An IPv6 address from its upper and lower 64 bits.
    public init(ipv6High high: UInt64, low: UInt64) {
        self.init(family: .ipv6, value: AddressValue(high: high, low: low))
    }

    /// Parses `10.0.20.200`, `2001:db8::1`, `::ffff:10.0.0.1`; nil for anything else.
    public init?(_ text: String) {
        if text.contains(":") {
            guard let value = IPAddress.parseIPv6(Substring(text)) else { return nil }
            self.init(family: .ipv6, value: value)
        } else {
            guard let value = IPAddress.parseIPv4(Substring(text)) else { return nil }
            self.init(ipv4: value)
        }
    }

    /// The address as 128 bits: IPv4 addresses are in the low 32 bits of `low`.
    public var bits: (high: UInt64, low: UInt64) { (value.high, value.low) }

    /// The next address of the same family, or nil after the last one.
    public var successor: IPAddress? {
        if family == .ipv4 {
            return value.low >= UInt64(UInt32.max) ? nil : IPAddress(ipv4: UInt32(value.low + 1))
        }
        return value.adding(powerOfTwo: 0).map { IPAddress(family: .ipv6, value: $0) }
    }

    /// True for IPv4 addresses ending in `.0` or `.255`, which some old network stacks mistake
    /// for network or broadcast addresses (MetalLB's `avoidBuggyIPs` skips them).
    public var confusesBuggyFirmware: Bool {
        family == .ipv4 && (value.low & 0xFF == 0 || value.low & 0xFF == 0xFF)
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        lhs.family != rhs.family ? lhs.family < rhs.family : lhs.value < rhs.value
    }

    public var description: String {
        switch family {
        case .ipv4: IPAddress.formatIPv4(UInt32(truncatingIfNeeded: value.low))
        case .ipv6: IPAddress.formatIPv6(value)
        }
    }
}

extension IPAddress: Codable {
    /// Decodes the textual form; rejects anything `init?(_:)` rejects.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = IPAddress(text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\"\(text)\" is not an IP address"
            )
        }
        self = address
    }

    /// Encodes the canonical textual form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension IPAddress {
    static func parseIPv4(_ text: Substring) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var result: UInt32 = 0
        for octet in octets {
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            if octet.count > 1 && octet.first == "0" { return nil }
            guard let number = UInt32(octet), number <= 255 else { return nil }
            result = result << 8 | number
        }
        return result
    }

    /// Parses colon-separated hexadecimal groups; the last may be a dotted IPv4 address when allowed.
    private static func parseGroups(_ text: Substring, allowIPv4Suffix: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1 && allowIPv4Suffix && part.contains(".") {
                guard let ipv4 = parseIPv4(part) else { return nil }
                groups.append(UInt16(ipv4 >> 16))
                groups.append(UInt16(ipv4 & 0xFFFF))
                continue
            }
            guard (1...4).contains(part.count), part.allSatisfy({ $0.isHexDigit && $0.isASCII }),
                let group = UInt16(part, radix: 16)
            else { return nil }
            groups.append(group)
        }
        return groups
    }

    static func parseIPv6(_ text: Substring) -> AddressValue? {
        var groups: [UInt16]
        if let ellipsis = text.firstRange(of: "::") {
            let head = text[..<ellipsis.lowerBound]
            let tail = text[ellipsis.upperBound...]
            guard !tail.contains("::"),
                let headGroups = parseGroups(head, allowIPv4Suffix: false),
                let tailGroups = parseGroups(tail, allowIPv4Suffix: true),
                headGroups.count + tailGroups.count <= 7
            else { return nil }
            groups = headGroups + Array(repeating: 0, count: 8 - headGroups.count - tailGroups.count) + tailGroups
        } else {
            guard let all = parseGroups(text, allowIPv4Suffix: true), all.count == 8 else { return nil }
            groups = all
        }
        var value = AddressValue(high: 0, low: 0)
        for (index, group) in groups.enumerated() {
            if index < 4 {
                value.high = value.high << 16 | UInt64(group)
            } else {
                value.low = value.low << 16 | UInt64(group)
            }
        }
        return value
    }

    static func formatIPv4(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    static func formatIPv6(_ value: AddressValue) -> String {
        // RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad.
        if value.high == 0 && value.low >> 32 == 0xFFFF {
            return "::ffff:" + formatIPv4(UInt32(truncatingIfNeeded: value.low))
        }
        var groups: [UInt16] = []
        for shift in stride(from: 48, through: 0, by: -16) {
            groups.append(UInt16(truncatingIfNeeded: value.high >> shift))
        }
        for shift in stride(from: 48, through: 0, by: -16) {
            groups.append(UInt16(truncatingIfNeeded: value.low >> shift))
        }
        // The longest run of at least two zero groups; the first one on a tie.
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength {
                bestStart = index
                bestLength = end - index
            }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        if bestStart < 0 { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }
}
