/// Option 77, user class. RFC 3004 encodes a list of length-prefixed class names; iPXE and
/// many firmwares send one plain string (`iPXE`) instead. Both forms are read.
public struct DHCPUserClass: Hashable, Sendable {
    /// The class names as bytes.
    public var classes: [[UInt8]]
    /// Whether the option used the RFC 3004 length-prefixed form.
    public var isRFC3004Encoded: Bool

    /// Reads the option data: the RFC 3004 form when every length byte fits exactly, else
    /// one plain string. Empty data is invalid.
    public init(decoding data: [UInt8]) throws(DHCPDecodingError) {
        guard !data.isEmpty else { throw .invalidOptionLength(code: DHCPOptionCode.userClass, length: 0) }
        var classes: [[UInt8]] = []
        var index = 0
        while index < data.count {
            let length = Int(data[index])
            guard length > 0, index + 1 + length <= data.count else {
                self.classes = [data]
                self.isRFC3004Encoded = false
                return
            }
            classes.append(Array(data[index + 1..<index + 1 + length]))
            index += 1 + length
        }
        self.classes = classes
        self.isRFC3004Encoded = true
    }

    /// The class names as text.
    public var names: [String] {
        self.classes.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether one of the classes is exactly `name`.
    public func contains(_ name: String) -> Bool {
        self.classes.contains(Array(name.utf8))
    }
}
