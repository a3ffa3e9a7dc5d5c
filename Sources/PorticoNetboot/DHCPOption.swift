/// One DHCP option (or sub-option inside an encapsulated option such as 43 or 175): a code
/// and its data. On the wire the data of one code may be split over several instances
/// (RFC 3396); decoding joins them, encoding splits data longer than 255 bytes.
public struct DHCPOption: Hashable, Sendable {
    /// The option code (1...254; 0 is padding and 255 ends the options).
    public var code: UInt8
    /// The option data, without code and length bytes.
    public var data: [UInt8]

    /// An option with `code` and `data`.
    public init(code: UInt8, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// Option codes used by the netboot responder (RFC 2132, 3004, 4578, iPXE).
public enum DHCPOptionCode {
    /// 0: padding, no length byte.
    public static let pad: UInt8 = 0
    /// 43: vendor-specific information (PXE sub-options for `PXEClient`).
    public static let vendorSpecificInformation: UInt8 = 43
    /// 52: option overload, the `file` and/or `sname` fields carry options.
    public static let optionOverload: UInt8 = 52
    /// 53: DHCP message type.
    public static let messageType: UInt8 = 53
    /// 54: server identifier.
    public static let serverIdentifier: UInt8 = 54
    /// 60: vendor class identifier (`PXEClient:Arch:00000:UNDI:002001`, `HTTPClient`).
    public static let vendorClassIdentifier: UInt8 = 60
    /// 67: boot file name, when it does not fit the `file` field.
    public static let bootFileName: UInt8 = 67
    /// 77: user class (`iPXE`).
    public static let userClass: UInt8 = 77
    /// 93: client system architectures (RFC 4578).
    public static let clientArchitecture: UInt8 = 93
    /// 94: client network interface identifier (RFC 4578).
    public static let clientNetworkInterface: UInt8 = 94
    /// 97: client machine identifier, a UUID (RFC 4578).
    public static let clientMachineIdentifier: UInt8 = 97
    /// 175: iPXE's encapsulated options.
    public static let ipxeEncapsulated: UInt8 = 175
    /// 255: end of options, no length byte.
    public static let end: UInt8 = 255
}

/// The options of a message in wire order, one entry per code.
public struct DHCPOptions: Hashable, Sendable {
    /// The options, one per code, in the order their codes first appeared.
    public private(set) var all: [DHCPOption]

    /// No options.
    public init() {
        self.all = []
    }

    /// The given options; later entries with a code seen before are appended to its data.
    public init(_ options: [DHCPOption]) {
        self.all = []
        for option in options {
            self.append(option)
        }
    }

    /// The data of option `code`, `nil` when absent. Setting `nil` removes it; setting a value
    /// replaces the data in place or appends the option.
    public subscript(code: UInt8) -> [UInt8]? {
        get { self.all.first(where: { $0.code == code })?.data }
        set {
            let index = self.all.firstIndex(where: { $0.code == code })
            switch (index, newValue) {
            case (let index?, let data?):
                self.all[index].data = data
            case (let index?, nil):
                self.all.remove(at: index)
            case (nil, let data?):
                self.all.append(DHCPOption(code: code, data: data))
            case (nil, nil):
                break
            }
        }
    }

    /// Whether option `code` is present.
    public func contains(_ code: UInt8) -> Bool {
        self.all.contains(where: { $0.code == code })
    }

    /// Adds an option, joining its data to an existing one with the same code (RFC 3396).
    public mutating func append(_ option: DHCPOption) {
        if let index = self.all.firstIndex(where: { $0.code == option.code }) {
            self.all[index].data += option.data
        } else {
            self.all.append(option)
        }
    }

    /// Parses a code/length/data sequence; pad bytes are skipped and an end byte (or the end
    /// of the area) stops. Instances of one code are joined.
    static func parse(
        _ bytes: ArraySlice<UInt8>,
        area: DHCPOptionArea
    ) throws(DHCPDecodingError) -> [DHCPOption] {
        var options = DHCPOptions()
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let code = bytes[index]
            index += 1
            if code == DHCPOptionCode.pad { continue }
            if code == DHCPOptionCode.end { break }
            guard index < bytes.endIndex else {
                throw .optionOverrunsArea(code: code, area: area)
            }
            let length = Int(bytes[index])
            index += 1
            guard bytes.endIndex - index >= length else {
                throw .optionOverrunsArea(code: code, area: area)
            }
            options.append(DHCPOption(code: code, data: Array(bytes[index..<index + length])))
            index += length
        }
        return options.all
    }

    /// Code/length/data instances (data over 255 bytes split, RFC 3396), without an end byte.
    static func serialize(_ options: [DHCPOption], into bytes: inout [UInt8]) throws(DHCPEncodingError) {
        for option in options {
            guard option.code != DHCPOptionCode.pad, option.code != DHCPOptionCode.end else {
                throw .reservedOptionCode(option.code)
            }
            var remaining = option.data[...]
            repeat {
                let chunk = remaining.prefix(255)
                bytes.append(option.code)
                bytes.append(UInt8(chunk.count))
                bytes += chunk
                remaining = remaining.dropFirst(chunk.count)
            } while !remaining.isEmpty
        }
    }
}

/// Where in a message an option was read from.
public enum DHCPOptionArea: Hashable, Sendable {
    /// The options field after the magic cookie.
    case options
    /// The `file` field, when option 52 says it carries options.
    case file
    /// The `sname` field, when option 52 says it carries options.
    case serverName
    /// The data of an encapsulated option (43, 175) with this code.
    case encapsulated(UInt8)
}
