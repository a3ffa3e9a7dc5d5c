@testable import PorticoNetboot

enum DHCPFixtures {
    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    static let uuidOption: [UInt8] = [0] + (1...16).map { UInt8($0) }

    /// A DISCOVER as a PXE ROM sends it.
    static func pxeDiscover(
        architecture: UInt16 = 0,
        vendorClass: String? = nil,
        userClass: [UInt8]? = nil,
        uuid: [UInt8]? = Self.uuidOption,
        type: DHCPMessageType = .discover
    ) -> DHCPMessage {
        var options = DHCPOptions()
        options[DHCPOptionCode.messageType] = [type.rawValue]
        let vendor =
            vendorClass ?? "PXEClient:Arch:\(String(repeating: "0", count: 5 - String(architecture).count))"
            + "\(architecture):UNDI:002001"
        options[DHCPOptionCode.vendorClassIdentifier] = Array(vendor.utf8)
        options[DHCPOptionCode.clientArchitecture] = [UInt8(architecture >> 8), UInt8(architecture & 0xFF)]
        options[DHCPOptionCode.clientNetworkInterface] = [1, 2, 1]
        if let uuid { options[DHCPOptionCode.clientMachineIdentifier] = uuid }
        if let userClass { options[DHCPOptionCode.userClass] = userClass }
        return DHCPMessage(
            operation: .bootRequest,
            transactionID: 0xDEAD_BEEF,
            secondsElapsed: 4,
            flags: 0x8000,
            clientHardwareAddressField: Self.mac + [UInt8](repeating: 0, count: 10),
            options: options
        )
    }
}
