/// A link-layer address (an Ethernet MAC for hardware type 1), as in `chaddr`.
public struct HardwareAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address bytes (6 for Ethernet).
    public var bytes: [UInt8]

    /// An address from its bytes (at most 16, the size of `chaddr`).
    public init(_ bytes: [UInt8]) {
        precondition(bytes.count <= 16, "a hardware address has at most 16 bytes")
        self.bytes = bytes
    }

    /// Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (any case); `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard (1...16).contains(parts.count) else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// Lowercase hex bytes joined by `separator`: `aa:bb:cc:dd:ee:ff` by default.
    public func formatted(separator: String = ":") -> String {
        self.bytes.map { Hex.byte($0) }.joined(separator: separator)
    }

    /// `aa:bb:cc:dd:ee:ff`.
    public var description: String { self.formatted() }
}

enum Hex {
    private static let digits = Array("0123456789abcdef")

    static func byte(_ value: UInt8, uppercase: Bool = false) -> String {
        let text = String([Self.digits[Int(value >> 4)], Self.digits[Int(value & 0xF)]])
        return uppercase ? text.uppercased() : text
    }

    static func string(_ bytes: some Sequence<UInt8>, uppercase: Bool = false) -> String {
        bytes.map { Self.byte($0, uppercase: uppercase) }.joined()
    }
}
