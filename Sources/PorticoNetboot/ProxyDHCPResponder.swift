#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The proxyDHCP socket a request arrived on.
public enum ProxyDHCPPort: UInt16, Hashable, Sendable {
    /// 67: broadcast DISCOVERs, answered with OFFERs.
    case dhcp = 67
    /// 4011: PXE boot server requests, answered with ACKs whatever their message type.
    case pxeBootServer = 4011
}

/// A proxyDHCP reply and where to send it.
public struct ProxyDHCPReply: Hashable, Sendable {
    /// The reply.
    public var message: DHCPMessage
    /// 255.255.255.255:68, the relay's giaddr:67, or the client on 4011.
    public var destination: UDPEndpoint
}

/// Answers PXE and UEFI HTTP boot clients next to an existing DHCP server (proxyDHCP): it
/// never hands out addresses, only where to boot from. Pure and stateless.
public struct ProxyDHCPResponder: Sendable {
    /// Our address: option 54 and `siaddr` (always filled: iPXE ignores offers with siaddr 0).
    public var serverAddress: IPv4Address
    /// Base of the HTTP boot URLs (`http://192.0.2.1/`); the iPXE script and UEFI HTTP loaders live under it.
    public var httpBase: URL
    /// Loader names per architecture.
    public var bootFiles: BootLoaderFiles
    /// When true, an iPXE client whose vendor class names an architecture
    /// (`PXEClient:Arch:...`, as firmware ROMs send) is treated as a plain PXE ROM and gets
    /// the loader over TFTP; chain-loaded iPXE sends a bare `PXEClient` and gets the script.
    /// For test rigs whose NIC ROMs are iPXE builds.
    public var treatsFirmwareIPXEAsPlainPXE: Bool

    /// A responder for `serverAddress`.
    public init(
        serverAddress: IPv4Address,
        httpBase: URL,
        bootFiles: BootLoaderFiles = .ipxeDefaults,
        treatsFirmwareIPXEAsPlainPXE: Bool = false
    ) {
        self.serverAddress = serverAddress
        self.httpBase = httpBase
        self.bootFiles = bootFiles
        self.treatsFirmwareIPXEAsPlainPXE = treatsFirmwareIPXEAsPlainPXE
    }

    /// The reply to `request`, or `nil` when it gets none: not a boot request, no
    /// `PXEClient`/`HTTPClient` vendor class, not a DISCOVER on port 67, a malformed
    /// option the answer depends on, or an architecture without a loader.
    public func answer(
        to request: DHCPMessage,
        receivedOn port: ProxyDHCPPort,
        from source: UDPEndpoint
    ) -> ProxyDHCPReply? {
        guard request.operation == .bootRequest, let vendorClass = request.vendorClassIdentifier else { return nil }
        let clientClass: String
        if vendorClass.hasPrefix("PXEClient") {
            clientClass = "PXEClient"
        } else if vendorClass.hasPrefix("HTTPClient") {
            clientClass = "HTTPClient"
        } else {
            return nil
        }
        let replyType: DHCPMessageType
        switch port {
        case .dhcp:
            guard (try? request.messageType) == .discover else { return nil }
            replyType = .offer
        case .pxeBootServer:
            replyType = .acknowledgement
        }
        guard let architecture = Self.architecture(of: request, vendorClass: vendorClass) else { return nil }
        guard let bootFile = self.bootFile(for: request, architecture: architecture, vendorClass: vendorClass) else {
            return nil
        }

        var options = DHCPOptions()
        options[DHCPOptionCode.messageType] = [replyType.rawValue]
        options[DHCPOptionCode.serverIdentifier] = self.serverAddress.bytes
        options[DHCPOptionCode.vendorClassIdentifier] = Array(clientClass.utf8)
        if let uuid = request.options[DHCPOptionCode.clientMachineIdentifier] {
            options[DHCPOptionCode.clientMachineIdentifier] = uuid
        }
        if architecture == .x86BIOS {
            var pxe = DHCPOptions()
            pxe[PXEDiscoveryControl.subOptionCode] = [PXEDiscoveryControl.useBootFileDirectly.rawValue]
            options[DHCPOptionCode.vendorSpecificInformation] = try? DHCPEncapsulatedOptions(pxe).encoded()
        }
        let fileFits = bootFile.utf8.count <= 127
        if !fileFits {
            options[DHCPOptionCode.bootFileName] = Array(bootFile.utf8)
        }

        let reply = DHCPMessage(
            operation: .bootReply,
            hardwareType: request.hardwareType,
            hardwareAddressLength: request.hardwareAddressLength,
            transactionID: request.transactionID,
            flags: request.flags,
            clientAddress: port == .pxeBootServer ? request.clientAddress : .any,
            yourAddress: port == .pxeBootServer ? request.clientAddress : .any,
            nextServerAddress: self.serverAddress,
            relayAgentAddress: request.relayAgentAddress,
            clientHardwareAddressField: request.clientHardwareAddressField,
            serverName: self.serverAddress.description,
            bootFileName: fileFits ? bootFile : "",
            options: options
        )
        return ProxyDHCPReply(message: reply, destination: Self.destination(of: request, port: port, source: source))
    }

    /// Where a reply to `request` goes.
    static func destination(of request: DHCPMessage, port: ProxyDHCPPort, source: UDPEndpoint) -> UDPEndpoint {
        switch port {
        case .dhcp:
            if !request.relayAgentAddress.isAny {
                return UDPEndpoint(address: request.relayAgentAddress, port: 67)
            }
            return UDPEndpoint(address: .broadcast, port: 68)
        case .pxeBootServer:
            if !request.clientAddress.isAny {
                return UDPEndpoint(address: request.clientAddress, port: source.port)
            }
            return source
        }
    }

    /// Option 93's first entry, else the `Arch:` field of the vendor class, else BIOS (x86-64
    /// HTTP boot for `HTTPClient`); `nil` when option 93 is malformed.
    static func architecture(of request: DHCPMessage, vendorClass: String) -> ClientArchitecture? {
        do {
            if let first = try request.clientArchitectures?.first { return first }
        } catch {
            return nil
        }
        let fields = vendorClass.split(separator: ":")
        if let index = fields.firstIndex(of: "Arch"), index + 1 < fields.count, let value = UInt16(fields[index + 1]) {
            return ClientArchitecture(rawValue: value)
        }
        return vendorClass.hasPrefix("HTTPClient") ? .x64UEFIHTTP : .x86BIOS
    }

    /// Whether `request` comes from iPXE: user class `iPXE` or option 175.
    static func isIPXE(_ request: DHCPMessage) -> Bool {
        if request.options.contains(DHCPOptionCode.ipxeEncapsulated) { return true }
        return (try? request.userClass)??.contains("iPXE") ?? false
    }

    private func bootFile(for request: DHCPMessage, architecture: ClientArchitecture, vendorClass: String) -> String? {
        let firmwareROM = self.treatsFirmwareIPXEAsPlainPXE && vendorClass.contains(":Arch:")
        if Self.isIPXE(request) && !firmwareROM {
            return self.url(self.bootFiles.ipxeScript)
        }
        guard let loader = self.bootFiles.loader(for: architecture) else { return nil }
        return architecture.isHTTPBoot ? self.url(loader) : loader
    }

    private func url(_ name: String) -> String {
        var base = self.httpBase.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/" + name
    }
}
