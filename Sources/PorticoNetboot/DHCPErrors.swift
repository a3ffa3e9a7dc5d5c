/// Why bytes are not a well-formed BOOTP/DHCP message, or an option is not well-formed.
public enum DHCPDecodingError: Error, Hashable, Sendable {
    /// Fewer bytes than the 236-byte fixed part plus the 4-byte magic cookie.
    case truncated(length: Int)
    /// `op` is neither 1 (BOOTREQUEST) nor 2 (BOOTREPLY).
    case unknownOperation(UInt8)
    /// `hlen` is larger than the 16-byte `chaddr` field.
    case hardwareAddressTooLong(UInt8)
    /// The four bytes after the fixed part are not 99.130.83.99.
    case badMagicCookie(UInt32)
    /// An option's length byte is missing or its data runs past the end of its area.
    case optionOverrunsArea(code: UInt8, area: DHCPOptionArea)
    /// Option 52 is not one byte of value 1, 2 or 3, or appears inside `file`/`sname`.
    case invalidOverload([UInt8])
    /// Option `code` has a length its definition does not allow.
    case invalidOptionLength(code: UInt8, length: Int)
    /// Option `code` has the right length but a value its definition does not allow.
    case invalidOptionValue(code: UInt8)
}

/// Why a message cannot be encoded.
public enum DHCPEncodingError: Error, Hashable, Sendable {
    /// `sname` (63 bytes) or `file` (127 bytes) text, or `chaddr` (16 bytes), is too long.
    case fieldTooLong(field: String, length: Int)
    /// Option codes 0 and 255 have no data and cannot be set.
    case reservedOptionCode(UInt8)
}
