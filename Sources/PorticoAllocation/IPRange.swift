/// A contiguous run of addresses of one family, from `first` to `last` inclusive.
///
/// Pools list their addresses as CIDRs (`10.0.0.0/24`) or ranges (`10.0.20.200-10.0.20.220`);
/// both become an `IPRange`.
public struct IPRange: Hashable, Sendable, CustomStringConvertible {
    /// The first address.
    public let first: IPAddress
    /// The last address (same family, not before `first`).
    public let last: IPAddress

    /// The range from `first` to `last`; nil when the families differ or `first` is after `last`.
    public init?(first: IPAddress, last: IPAddress) {
        guard first.family == last.family, first <= last else { return nil }
        self.first = first
        self.last = last
    }

    /// The addresses of a CIDR block.
    public init(_ cidr: CIDR) {
        self.first = cidr.first
        self.last = cidr.last
    }

    /// Parses a pool entry: a CIDR (`10.0.0.0/24`) or a range (`10.0.20.200-10.0.20.220`,
    /// spaces around the dash allowed, as in MetalLB).
    public static func parse(_ text: String) -> Result<IPRange, IPRangeError> {
        guard let dash = text.firstIndex(of: "-") else {
            if let cidr = CIDR(text) { return .success(IPRange(cidr)) }
            if IPAddress(text) != nil { return .failure(.missingPrefixLength(text)) }
            return .failure(.unparsable(text))
        }
        let startText = trimmed(text[..<dash])
        let endText = trimmed(text[text.index(after: dash)...])
        guard let start = IPAddress(startText) else { return .failure(.invalidAddress(startText, entry: text)) }
        guard let end = IPAddress(endText) else { return .failure(.invalidAddress(endText, entry: text)) }
        guard start.family == end.family else { return .failure(.mixedFamilies(start: start, end: end)) }
        guard let range = IPRange(first: start, last: end) else {
            return .failure(.startAfterEnd(start: start, end: end))
        }
        return .success(range)
    }

    private static func trimmed(_ text: Substring) -> String {
        String(text.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }

    /// The family of the range's addresses.
    public var family: IPFamily { first.family }

    /// Whether `address` lies in the range.
    public func contains(_ address: IPAddress) -> Bool {
        address.family == family && first <= address && address <= last
    }

    /// Whether the two ranges share at least one address.
    public func overlaps(_ other: IPRange) -> Bool {
        family == other.family && first <= other.last && other.first <= last
    }

    /// The minimal list of CIDR blocks covering exactly this range, in address order.
    public var cidrs: [CIDR] {
        let width = family.bitWidth
        var result: [CIDR] = []
        var current = first.value
        while true {
            // The largest aligned block starting at `current` that does not pass `last`.
            var hostBits = min(current.trailingZeroBitCount, width)
            while hostBits > 0 && current.settingLowBits(hostBits) > last.value { hostBits -= 1 }
            result.append(CIDR(containing: IPAddress(family: family, value: current), prefixLength: width - hostBits))
            let blockLast = current.settingLowBits(hostBits)
            guard blockLast < last.value, let next = current.adding(powerOfTwo: hostBits) else { break }
            current = next
        }
        return result
    }

    /// `first-last`, or the CIDR when the range is exactly one block.
    public var description: String {
        let blocks = cidrs
        return blocks.count == 1 ? blocks[0].description : "\(first)-\(last)"
    }
}

/// Why a pool entry is not a valid CIDR or range.
public enum IPRangeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Neither a CIDR nor a `start-end` range.
    case unparsable(String)
    /// A single address without a prefix length.
    case missingPrefixLength(String)
    /// One side of a `start-end` range is not an IP address.
    case invalidAddress(String, entry: String)
    /// The start of a range is after its end.
    case startAfterEnd(start: IPAddress, end: IPAddress)
    /// A range from an IPv4 to an IPv6 address (or the reverse).
    case mixedFamilies(start: IPAddress, end: IPAddress)

    public var description: String {
        switch self {
        case .unparsable(let text):
            "invalid CIDR or range \"\(text)\": write a CIDR (10.0.0.0/24) or a range (10.0.20.200-10.0.20.220)"
        case .missingPrefixLength(let text):
            "\"\(text)\" is an address, not a CIDR or range: write \"\(text)/\(text.contains(":") ? 128 : 32)\" for one address"
        case .invalidAddress(let address, let entry):
            "invalid IP address \"\(address)\" in range \"\(entry)\""
        case .startAfterEnd(let start, let end):
            "invalid range \"\(start)-\(end)\": start \(start) is after end \(end)"
        case .mixedFamilies(let start, let end):
            "invalid range \"\(start)-\(end)\": start is \(start.family) but end is \(end.family)"
        }
    }
}
