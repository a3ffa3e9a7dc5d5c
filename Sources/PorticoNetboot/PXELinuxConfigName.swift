/// The file names pxelinux tries under `pxelinux.cfg/`, and what a requested name means.
public enum PXELinuxConfigName: Hashable, Sendable {
    /// `pxelinux.cfg/<uuid>`, lowercase.
    case uuid(ClientUUID)
    /// `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`: ARP hardware type, then the address, lowercase.
    case hardwareAddress(type: UInt8, HardwareAddress)
    /// `pxelinux.cfg/C000025B` down to `pxelinux.cfg/C`: a prefix of the uppercase hex IP address.
    case ipAddressPrefix(String)
    /// `pxelinux.cfg/default`.
    case `default`

    /// The directory pxelinux looks in.
    public static let directory = "pxelinux.cfg"

    /// The names pxelinux tries, in its order: UUID, hardware address, the IP address in
    /// uppercase hex dropping one digit at a time down to one, then `default`.
    public static func lookupOrder(
        uuid: ClientUUID?,
        hardwareType: UInt8 = 1,
        hardwareAddress: HardwareAddress?,
        ipAddress: IPv4Address?
    ) -> [PXELinuxConfigName] {
        var names: [PXELinuxConfigName] = []
        if let uuid { names.append(.uuid(uuid)) }
        if let hardwareAddress { names.append(.hardwareAddress(type: hardwareType, hardwareAddress)) }
        if let ipAddress {
            let hex = Hex.string(ipAddress.bytes, uppercase: true)
            for length in stride(from: hex.count, through: 1, by: -1) {
                names.append(.ipAddressPrefix(String(hex.prefix(length))))
            }
        }
        names.append(.default)
        return names
    }

    /// Reads a sanitised TFTP path; `nil` unless it is one of the names pxelinux asks for.
    public init?(path: TFTPPath) {
        guard path.components.count == 2, path.components[0] == Self.directory else { return nil }
        let name = path.components[1]
        if name == "default" {
            self = .default
        } else if let uuid = ClientUUID(name), name == uuid.description {
            self = .uuid(uuid)
        } else if name.count >= 5, name.dropFirst(2).first == "-", let type = UInt8(name.prefix(2), radix: 16),
            name == name.lowercased(), let address = HardwareAddress(name.dropFirst(3)),
            name.dropFirst(3).allSatisfy({ $0 != ":" })
        {
            self = .hardwareAddress(type: type, address)
        } else if (1...8).contains(name.count), name.allSatisfy({ $0.isHexDigit && !$0.isLowercase }) {
            self = .ipAddressPrefix(name)
        } else {
            return nil
        }
    }

    /// The path relative to the TFTP root: `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`.
    public var path: String {
        switch self {
        case .uuid(let uuid): "\(Self.directory)/\(uuid)"
        case .hardwareAddress(let type, let address):
            "\(Self.directory)/\(Hex.byte(type))-\(address.formatted(separator: "-"))"
        case .ipAddressPrefix(let prefix): "\(Self.directory)/\(prefix)"
        case .default: "\(Self.directory)/default"
        }
    }
}
