/// The sub-options inside an encapsulated option: 43 (vendor-specific, PXE sub-options for
/// `PXEClient`) or 175 (iPXE). The same code/length/data layout as DHCP options.
public struct DHCPEncapsulatedOptions: Hashable, Sendable {
    /// The sub-options.
    public var options: DHCPOptions

    /// Sub-options to encode.
    public init(_ options: DHCPOptions = DHCPOptions()) {
        self.options = options
    }

    /// Reads the data of encapsulating option `code`.
    public init(decoding data: [UInt8], in code: UInt8) throws(DHCPDecodingError) {
        self.options = DHCPOptions(try DHCPOptions.parse(data[...], area: .encapsulated(code)))
    }

    /// The data for the encapsulating option: the sub-options followed by an end byte.
    public func encoded() throws(DHCPEncodingError) -> [UInt8] {
        var bytes: [UInt8] = []
        try DHCPOptions.serialize(self.options.all, into: &bytes)
        bytes.append(DHCPOptionCode.end)
        return bytes
    }
}

/// PXE sub-option 6 of option 43, discovery control (PXE 2.1 specification).
public struct PXEDiscoveryControl: OptionSet, Hashable, Sendable {
    /// The bit field.
    public var rawValue: UInt8

    /// Bits `rawValue`.
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// PXE sub-option code for discovery control.
    public static let subOptionCode: UInt8 = 6

    /// Bit 0: do not broadcast for boot servers.
    public static let disableBroadcastDiscovery = PXEDiscoveryControl(rawValue: 1)
    /// Bit 1: do not multicast for boot servers.
    public static let disableMulticastDiscovery = PXEDiscoveryControl(rawValue: 2)
    /// Bit 2: only use boot servers in the boot server list.
    public static let onlyListedServers = PXEDiscoveryControl(rawValue: 4)
    /// Bit 3: download the boot file named in this offer without prompting or discovery.
    public static let useBootFileDirectly = PXEDiscoveryControl(rawValue: 8)
}
