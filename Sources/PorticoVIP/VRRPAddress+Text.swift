extension VRRPAddress: CustomStringConvertible, LosslessStringConvertible {
    /// Parses `10.0.20.200`, `2001:db8::1` or `::ffff:10.0.0.1`; nil for anything else
    /// (no zones, prefixes, brackets or leading zeros in IPv4 octets).
    public init?(_ text: String) {
        if text.contains(":") {
            guard let groups = VRRPAddress.parseIPv6Groups(Substring(text)) else { return nil }
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (index, group) in groups.enumerated() {
                if index < 4 {
                    high = high << 16 | UInt64(group)
                } else {
                    low = low << 16 | UInt64(group)
                }
            }
            self = .ipv6(high: high, low: low)
        } else {
            guard let value = VRRPAddress.parseIPv4(Substring(text)) else { return nil }
            self = .ipv4(value)
        }
    }

    /// Dotted quad for IPv4, RFC 5952 canonical text for IPv6.
    public var description: String {
        switch self {
        case .ipv4(let value):
            return VRRPAddress.formatIPv4(value)
        case .ipv6(let high, let low):
            if high == 0 && low >> 32 == 0xFFFF {
                return "::ffff:" + VRRPAddress.formatIPv4(UInt32(truncatingIfNeeded: low))
            }
            let groups = (0..<8).map { index -> UInt16 in
                let half = index < 4 ? high : low
                return UInt16(truncatingIfNeeded: half >> (48 - 16 * (index % 4)))
            }
            return VRRPAddress.formatIPv6(groups)
        }
    }

    private static func parseIPv4(_ text: Substring) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var result: UInt32 = 0
        for octet in octets {
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }),
                octet.count == 1 || octet.first != "0",
                let number = UInt32(octet), number <= 255
            else { return nil }
            result = result << 8 | number
        }
        return result
    }

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
            guard (1...4).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isHexDigit }),
                let group = UInt16(part, radix: 16)
            else { return nil }
            groups.append(group)
        }
        return groups
    }

    private static func parseIPv6Groups(_ text: Substring) -> [UInt16]? {
        guard let ellipsis = text.firstRange(of: "::") else {
            guard let all = parseGroups(text, allowIPv4Suffix: true), all.count == 8 else { return nil }
            return all
        }
        let head = text[..<ellipsis.lowerBound]
        let tail = text[ellipsis.upperBound...]
        guard !tail.contains("::"),
            let headGroups = parseGroups(head, allowIPv4Suffix: false),
            let tailGroups = parseGroups(tail, allowIPv4Suffix: true),
            headGroups.count + tailGroups.count <= 7
        else { return nil }
        let zeros = [UInt16](repeating: 0, count: 8 - headGroups.count - tailGroups.count)
        return headGroups + zeros + tailGroups
    }

    private static func formatIPv4(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    /// RFC 5952: lower case, the longest run (first on a tie) of two or more zero groups as `::`.
    private static func formatIPv6(_ groups: [UInt16]) -> String {
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
        return hex[..<bestStart].joined(separator: ":") + "::"
            + hex[(bestStart + bestLength)...].joined(separator: ":")
    }
}
