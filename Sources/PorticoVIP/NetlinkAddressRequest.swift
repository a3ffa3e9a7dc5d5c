/// rtnetlink messages that add or remove one host address (/32 or /128) on an interface,
/// as keepalived does: RTM_NEWADDR / RTM_DELADDR with IFA_LOCAL and IFA_ADDRESS, and
/// IFA_F_NODAD for IPv6 so that duplicate address detection does not delay the takeover.
public struct NetlinkAddressRequest: Hashable, Sendable {
    /// Add or remove.
    public enum Operation: Hashable, Sendable {
        /// RTM_NEWADDR with NLM_F_CREATE | NLM_F_REPLACE.
        case add
        /// RTM_DELADDR.
        case remove
    }

    static let newAddress: UInt16 = 20
    static let deleteAddress: UInt16 = 21
    static let flagRequest: UInt16 = 0x01
    static let flagAcknowledge: UInt16 = 0x04
    static let flagReplace: UInt16 = 0x100
    static let flagCreate: UInt16 = 0x400
    static let attributeAddress: UInt16 = 1
    static let attributeLocal: UInt16 = 2
    static let attributeFlags: UInt16 = 8
    static let addressFlagNoDAD: UInt32 = 0x02
    static let addressFlagNoPrefixRoute: UInt32 = 0x200
    static let messageError: UInt16 = 2

    /// Add or remove.
    public var operation: Operation
    /// The address.
    public var address: VRRPAddress
    /// The interface index (`if_nametoindex`).
    public var interfaceIndex: UInt32
    /// The netlink sequence number, echoed in the acknowledgement.
    public var sequence: UInt32

    /// A request from its fields.
    public init(operation: Operation, address: VRRPAddress, interfaceIndex: UInt32, sequence: UInt32) {
        self.operation = operation
        self.address = address
        self.interfaceIndex = interfaceIndex
        self.sequence = sequence
    }

    /// The message in host byte order (netlink's), ready for `send`.
    public var bytes: [UInt8] {
        var body: [UInt8] = []
        let family: UInt8 = address.family == .ipv4 ? 2 : 10  // AF_INET, AF_INET6
        let prefixLength: UInt8 = address.family == .ipv4 ? 32 : 128
        var flags = Self.addressFlagNoPrefixRoute
        if address.family == .ipv6 { flags |= Self.addressFlagNoDAD }
        // struct ifaddrmsg: family, prefix length, flags (8 bits), scope (universe), index.
        body += [family, prefixLength, UInt8(truncatingIfNeeded: flags), 0]
        body += Self.littleEndian(interfaceIndex)
        body += Self.attribute(Self.attributeLocal, address.bytes)
        body += Self.attribute(Self.attributeAddress, address.bytes)
        body += Self.attribute(Self.attributeFlags, Self.littleEndian(flags))
        let type = operation == .add ? Self.newAddress : Self.deleteAddress
        var messageFlags = Self.flagRequest | Self.flagAcknowledge
        if operation == .add { messageFlags |= Self.flagCreate | Self.flagReplace }
        // struct nlmsghdr: length, type, flags, sequence, port id (0: the kernel assigns).
        var message = Self.littleEndian(UInt32(16 + body.count))
        message += Self.littleEndian16(type) + Self.littleEndian16(messageFlags)
        message += Self.littleEndian(sequence) + [0, 0, 0, 0]
        return message + body
    }

    /// The errno of an acknowledgement (`NLMSG_ERROR`) for `sequence` in `reply`: 0 for success,
    /// nil when `reply` holds no acknowledgement for it.
    public static func acknowledgement(in reply: [UInt8], sequence: UInt32) -> Int32? {
        var offset = 0
        while offset + 20 <= reply.count {
            let length = Int(readLittleEndian(reply, at: offset))
            guard length >= 16, offset + length <= reply.count else { return nil }
            let type = UInt16(reply[offset + 4]) | UInt16(reply[offset + 5]) << 8
            if type == messageError && readLittleEndian(reply, at: offset + 8) == sequence {
                return -Int32(bitPattern: readLittleEndian(reply, at: offset + 16))
            }
            offset += (length + 3) & ~3
        }
        return nil
    }

    private static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        let length = 4 + payload.count
        let padding = [UInt8](repeating: 0, count: (4 - length % 4) % 4)
        return littleEndian16(UInt16(length)) + littleEndian16(type) + payload + padding
    }

    private static func littleEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    private static func littleEndian16(_ value: UInt16) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)]
    }

    private static func readLittleEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }
}
