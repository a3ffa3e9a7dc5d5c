/// A client machine identifier from option 97 (RFC 4578: type 0 followed by 16 bytes).
///
/// The bytes are kept in wire order; the text form prints them in that order, as pxelinux
/// does for its `pxelinux.cfg/<uuid>` lookup.
public struct ClientUUID: Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes.
    public let bytes: [UInt8]

    /// A UUID from exactly 16 bytes; `nil` otherwise.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses `01234567-89ab-cdef-0123-456789abcdef` (any case); `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        let hex = Array(groups.joined())
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: hex.count, by: 2) {
            guard let byte = UInt8(String(hex[index...index + 1]), radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// Lowercase `8-4-4-4-12` hex.
    public var description: String {
        let hex = Hex.string(self.bytes)
        var text = ""
        for (offset, character) in hex.enumerated() {
            if [8, 12, 16, 20].contains(offset) { text.append("-") }
            text.append(character)
        }
        return text
    }
}
