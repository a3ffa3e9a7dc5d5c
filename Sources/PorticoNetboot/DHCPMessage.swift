/// A BOOTP/DHCP message (RFC 2131 section 2, RFC 951), decoded from and encoded to its
/// wire format. The fixed fields keep their RFC names in the documentation.
public struct DHCPMessage: Hashable, Sendable {
    /// The four bytes that start the options field: 99.130.83.99.
    public static let magicCookie: UInt32 = 0x6382_5363
    /// Length of the fixed part (`op` through `file`), without the magic cookie.
    public static let fixedPartLength = 236
    /// The smallest length a BOOTP message may have on the wire; encoding pads up to it.
    public static let minimumBOOTPLength = 300

    /// `op`: request from a client or reply from a server.
    public var operation: DHCPOperation
    /// `htype`: ARP hardware type (1 for Ethernet).
    public var hardwareType: UInt8
    /// `hlen`: how many bytes of `chaddr` are the hardware address (6 for Ethernet).
    public var hardwareAddressLength: UInt8
    /// `hops`: relay agents passed.
    public var hops: UInt8
    /// `xid`: transaction ID chosen by the client.
    public var transactionID: UInt32
    /// `secs`: seconds since the client began.
    public var secondsElapsed: UInt16
    /// `flags`: bit 15 is the broadcast flag.
    public var flags: UInt16
    /// `ciaddr`: the client's address when it already has one.
    public var clientAddress: IPv4Address
    /// `yiaddr`: the address offered to the client (0.0.0.0 in proxy replies).
    public var yourAddress: IPv4Address
    /// `siaddr`: the next server (the TFTP server).
    public var nextServerAddress: IPv4Address
    /// `giaddr`: the relay agent's address, 0.0.0.0 when not relayed.
    public var relayAgentAddress: IPv4Address
    /// `chaddr`: the 16-byte client hardware address field, as on the wire.
    public var clientHardwareAddressField: [UInt8]
    /// `sname`: the server host name (empty when the field carried options).
    public var serverName: String
    /// `file`: the boot file name (empty when the field carried options).
    public var bootFileName: String
    /// The options, including those read from `file`/`sname` when option 52 said so.
    public var options: DHCPOptions

    /// A message with every field given or zero.
    public init(
        operation: DHCPOperation,
        hardwareType: UInt8 = 1,
        hardwareAddressLength: UInt8 = 6,
        hops: UInt8 = 0,
        transactionID: UInt32,
        secondsElapsed: UInt16 = 0,
        flags: UInt16 = 0,
        clientAddress: IPv4Address = .any,
        yourAddress: IPv4Address = .any,
        nextServerAddress: IPv4Address = .any,
        relayAgentAddress: IPv4Address = .any,
        clientHardwareAddressField: [UInt8],
        serverName: String = "",
        bootFileName: String = "",
        options: DHCPOptions = DHCPOptions()
    ) {
        self.operation = operation
        self.hardwareType = hardwareType
        self.hardwareAddressLength = hardwareAddressLength
        self.hops = hops
        self.transactionID = transactionID
        self.secondsElapsed = secondsElapsed
        self.flags = flags
        self.clientAddress = clientAddress
        self.yourAddress = yourAddress
        self.nextServerAddress = nextServerAddress
        self.relayAgentAddress = relayAgentAddress
        self.clientHardwareAddressField = clientHardwareAddressField
        self.serverName = serverName
        self.bootFileName = bootFileName
        self.options = options
    }

    /// The broadcast bit of `flags`.
    public var isBroadcast: Bool { self.flags & 0x8000 != 0 }

    /// The first `hlen` bytes of `chaddr`.
    public var clientHardwareAddress: HardwareAddress {
        HardwareAddress(Array(self.clientHardwareAddressField.prefix(Int(min(self.hardwareAddressLength, 16)))))
    }

    /// Decodes a message. Any malformation is a `DHCPDecodingError`; nothing traps.
    public init(decoding input: some Collection<UInt8>) throws(DHCPDecodingError) {
        let bytes = Array(input)
        guard bytes.count >= Self.fixedPartLength + 4 else { throw .truncated(length: bytes.count) }
        guard let operation = DHCPOperation(rawValue: bytes[0]) else { throw .unknownOperation(bytes[0]) }
        guard bytes[2] <= 16 else { throw .hardwareAddressTooLong(bytes[2]) }
        let cookie = Self.readUInt32(bytes, at: Self.fixedPartLength)
        guard cookie == Self.magicCookie else { throw .badMagicCookie(cookie) }

        var options = DHCPOptions(try DHCPOptions.parse(bytes[(Self.fixedPartLength + 4)...], area: .options))
        var fileCarriesOptions = false
        var serverNameCarriesOptions = false
        if let overload = options[DHCPOptionCode.optionOverload] {
            guard overload.count == 1, (1...3).contains(overload[0]) else { throw .invalidOverload(overload) }
            fileCarriesOptions = overload[0] & 1 != 0
            serverNameCarriesOptions = overload[0] & 2 != 0
        }
        let serverNameField = bytes[44..<108]
        let fileField = bytes[108..<236]
        // RFC 3396: the options field first, then `file`, then `sname`.
        for (carries, field, area) in [
            (fileCarriesOptions, fileField, DHCPOptionArea.file),
            (serverNameCarriesOptions, serverNameField, DHCPOptionArea.serverName),
        ] where carries {
            for option in try DHCPOptions.parse(field, area: area) {
                guard option.code != DHCPOptionCode.optionOverload else { throw .invalidOverload(option.data) }
                options.append(option)
            }
        }

        self.operation = operation
        self.hardwareType = bytes[1]
        self.hardwareAddressLength = bytes[2]
        self.hops = bytes[3]
        self.transactionID = Self.readUInt32(bytes, at: 4)
        self.secondsElapsed = UInt16(bytes[8]) << 8 | UInt16(bytes[9])
        self.flags = UInt16(bytes[10]) << 8 | UInt16(bytes[11])
        self.clientAddress = IPv4Address(rawValue: Self.readUInt32(bytes, at: 12))
        self.yourAddress = IPv4Address(rawValue: Self.readUInt32(bytes, at: 16))
        self.nextServerAddress = IPv4Address(rawValue: Self.readUInt32(bytes, at: 20))
        self.relayAgentAddress = IPv4Address(rawValue: Self.readUInt32(bytes, at: 24))
        self.clientHardwareAddressField = Array(bytes[28..<44])
        self.serverName = serverNameCarriesOptions ? "" : Self.text(serverNameField)
        self.bootFileName = fileCarriesOptions ? "" : Self.text(fileField)
        self.options = options
    }

    /// The wire bytes: fixed part, magic cookie, options, end, and pad bytes up to
    /// `minimumLength` (300 by default, which old BOOTP clients require).
    public func encoded(minimumLength: Int = Self.minimumBOOTPLength) throws(DHCPEncodingError) -> [UInt8] {
        let serverName = Array(self.serverName.utf8)
        let file = Array(self.bootFileName.utf8)
        guard serverName.count <= 63 else { throw .fieldTooLong(field: "sname", length: serverName.count) }
        guard file.count <= 127 else { throw .fieldTooLong(field: "file", length: file.count) }
        guard self.clientHardwareAddressField.count <= 16 else {
            throw .fieldTooLong(field: "chaddr", length: self.clientHardwareAddressField.count)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(minimumLength, 512))
        bytes += [self.operation.rawValue, self.hardwareType, self.hardwareAddressLength, self.hops]
        Self.appendUInt32(self.transactionID, to: &bytes)
        bytes += [UInt8(self.secondsElapsed >> 8), UInt8(self.secondsElapsed & 0xFF)]
        bytes += [UInt8(self.flags >> 8), UInt8(self.flags & 0xFF)]
        for address in [self.clientAddress, self.yourAddress, self.nextServerAddress, self.relayAgentAddress] {
            Self.appendUInt32(address.rawValue, to: &bytes)
        }
        bytes += self.clientHardwareAddressField
        bytes += repeatElement(0, count: 16 - self.clientHardwareAddressField.count)
        bytes += serverName
        bytes += repeatElement(0, count: 64 - serverName.count)
        bytes += file
        bytes += repeatElement(0, count: 128 - file.count)
        Self.appendUInt32(Self.magicCookie, to: &bytes)
        try DHCPOptions.serialize(self.options.all, into: &bytes)
        bytes.append(DHCPOptionCode.end)
        if bytes.count < minimumLength {
            bytes += repeatElement(DHCPOptionCode.pad, count: minimumLength - bytes.count)
        }
        return bytes
    }

    private static func readUInt32(_ bytes: [UInt8], at index: Int) -> UInt32 {
        UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8
            | UInt32(bytes[index + 3])
    }

    private static func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private static func text(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
}

/// `op`: BOOTREQUEST or BOOTREPLY.
public enum DHCPOperation: UInt8, Hashable, Sendable {
    /// 1: client to server.
    case bootRequest = 1
    /// 2: server to client.
    case bootReply = 2
}
