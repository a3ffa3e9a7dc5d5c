/// A TFTP packet (RFC 1350, with OACK from RFC 2347), decoded from and encoded to its wire format.
public enum TFTPPacket: Hashable, Sendable {
    /// Opcode 1: read request.
    case readRequest(TFTPRequest)
    /// Opcode 2: write request.
    case writeRequest(TFTPRequest)
    /// Opcode 3: a data block (at most 65464 bytes).
    case data(block: UInt16, payload: [UInt8])
    /// Opcode 4: acknowledgement of a block (block 0 acknowledges an OACK).
    case acknowledgement(block: UInt16)
    /// Opcode 5: error; the transfer ends.
    case error(TFTPErrorCode, message: String)
    /// Opcode 6: the options the server accepted (RFC 2347).
    case optionAcknowledgement([TFTPOption])

    /// The largest DATA payload any block size allows (RFC 2348).
    public static let maximumPayloadLength = 65464

    /// Decodes a packet. Any malformation is a `TFTPDecodingError`; nothing traps.
    public init(decoding input: some Collection<UInt8>) throws(TFTPDecodingError) {
        let bytes = Array(input)
        guard bytes.count >= 2 else { throw .truncated(length: bytes.count) }
        let opcode = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        var reader = StringReader(bytes: bytes, index: 2)
        switch opcode {
        case 1, 2:
            let request = try TFTPRequest(reading: &reader)
            self = opcode == 1 ? .readRequest(request) : .writeRequest(request)
        case 3:
            guard bytes.count >= 4 else { throw .truncated(length: bytes.count) }
            guard bytes.count - 4 <= Self.maximumPayloadLength else { throw .payloadTooLong(bytes.count - 4) }
            self = .data(block: UInt16(bytes[2]) << 8 | UInt16(bytes[3]), payload: Array(bytes[4...]))
        case 4:
            guard bytes.count >= 4 else { throw .truncated(length: bytes.count) }
            self = .acknowledgement(block: UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
        case 5:
            guard bytes.count >= 4 else { throw .truncated(length: bytes.count) }
            reader.index = 4
            // Lenient: a client aborting without the terminating NUL still aborts.
            let message = reader.next() ?? String(decoding: bytes[4...], as: UTF8.self)
            self = .error(TFTPErrorCode(rawValue: UInt16(bytes[2]) << 8 | UInt16(bytes[3])), message: message)
        case 6:
            self = .optionAcknowledgement(try TFTPOption.readList(&reader))
        default:
            throw .unknownOpcode(opcode)
        }
    }

    /// The wire bytes.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        func append(_ value: UInt16) {
            bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
        }
        func append(_ text: String) {
            bytes += text.utf8
            bytes.append(0)
        }
        switch self {
        case .readRequest(let request), .writeRequest(let request):
            if case .readRequest = self { append(1) } else { append(2) }
            append(request.fileName)
            append(request.mode.rawValue)
            for option in request.options {
                append(option.name)
                append(option.value)
            }
        case .data(let block, let payload):
            append(3)
            append(block)
            bytes += payload
        case .acknowledgement(let block):
            append(4)
            append(block)
        case .error(let code, let message):
            append(5)
            append(code.rawValue)
            append(message)
        case .optionAcknowledgement(let options):
            append(6)
            for option in options {
                append(option.name)
                append(option.value)
            }
        }
        return bytes
    }
}

/// A read or write request.
public struct TFTPRequest: Hashable, Sendable {
    /// The file name as the client sent it (not yet sanitised).
    public var fileName: String
    /// The transfer mode.
    public var mode: TFTPTransferMode
    /// The requested options (RFC 2347), in the client's order.
    public var options: [TFTPOption]

    /// A request.
    public init(fileName: String, mode: TFTPTransferMode = .octet, options: [TFTPOption] = []) {
        self.fileName = fileName
        self.mode = mode
        self.options = options
    }

    fileprivate init(reading reader: inout StringReader) throws(TFTPDecodingError) {
        guard let fileName = reader.next() else { throw .unterminatedString }
        guard !fileName.isEmpty else { throw .emptyFileName }
        guard let modeText = reader.next() else { throw .unterminatedString }
        guard let mode = TFTPTransferMode(rawValue: modeText.lowercased()) else { throw .unknownMode(modeText) }
        self.fileName = fileName
        self.mode = mode
        self.options = try TFTPOption.readList(&reader)
    }
}

/// The mode of a request.
public enum TFTPTransferMode: String, Hashable, Sendable {
    /// Text with CR LF line ends.
    case netascii
    /// Raw bytes.
    case octet
    /// Obsolete mail mode.
    case mail
}

/// One `name`/`value` option pair (RFC 2347).
public struct TFTPOption: Hashable, Sendable {
    /// The option name (case-insensitive on the wire).
    public var name: String
    /// The value, as text.
    public var value: String

    /// An option.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Name/value pairs up to the end of the packet. Some clients pad requests with NULs: an
    /// empty name ends the list.
    fileprivate static func readList(_ reader: inout StringReader) throws(TFTPDecodingError) -> [TFTPOption] {
        var options: [TFTPOption] = []
        while !reader.isAtEnd {
            guard let name = reader.next() else { throw .unterminatedString }
            if name.isEmpty { break }
            guard let value = reader.next() else { throw .optionWithoutValue(name) }
            options.append(TFTPOption(name: name, value: value))
        }
        return options
    }
}

/// A TFTP error code (RFC 1350, 2347). Unknown codes are kept as they are.
public struct TFTPErrorCode: RawRepresentable, Hashable, Sendable {
    /// The 16-bit code.
    public var rawValue: UInt16

    /// The code `rawValue`.
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 0: not defined, see the message (EDK2 aborts its tsize probe with it).
    public static let notDefined = TFTPErrorCode(rawValue: 0)
    /// 1.
    public static let fileNotFound = TFTPErrorCode(rawValue: 1)
    /// 2.
    public static let accessViolation = TFTPErrorCode(rawValue: 2)
    /// 3.
    public static let diskFull = TFTPErrorCode(rawValue: 3)
    /// 4.
    public static let illegalOperation = TFTPErrorCode(rawValue: 4)
    /// 5: a packet from an unexpected port.
    public static let unknownTransferID = TFTPErrorCode(rawValue: 5)
    /// 6.
    public static let fileAlreadyExists = TFTPErrorCode(rawValue: 6)
    /// 7.
    public static let noSuchUser = TFTPErrorCode(rawValue: 7)
    /// 8: the client refuses the OACK (RFC 2347).
    public static let optionNegotiationFailed = TFTPErrorCode(rawValue: 8)
}

/// Why bytes are not a well-formed TFTP packet.
public enum TFTPDecodingError: Error, Hashable, Sendable {
    /// Too short for its opcode.
    case truncated(length: Int)
    /// An opcode other than 1...6.
    case unknownOpcode(UInt16)
    /// A file name, mode or option without its terminating NUL.
    case unterminatedString
    /// A request with an empty file name.
    case emptyFileName
    /// A mode other than netascii, octet or mail.
    case unknownMode(String)
    /// An option name with no value after it.
    case optionWithoutValue(String)
    /// A DATA payload over 65464 bytes.
    case payloadTooLong(Int)
}

private struct StringReader {
    let bytes: [UInt8]
    var index: Int

    var isAtEnd: Bool { self.index >= self.bytes.count }

    /// The next NUL-terminated string, or `nil` when there is no terminating NUL.
    mutating func next() -> String? {
        guard self.index <= self.bytes.count,
            let end = self.bytes[self.index...].firstIndex(of: 0)
        else { return nil }
        defer { self.index = end + 1 }
        return String(decoding: self.bytes[self.index..<end], as: UTF8.self)
    }
}
