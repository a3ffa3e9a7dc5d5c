extension DHCPMessage {
    /// Option 53; `nil` for a plain BOOTP message.
    public var messageType: DHCPMessageType? {
        get throws(DHCPDecodingError) {
            guard let data = self.options[DHCPOptionCode.messageType] else { return nil }
            guard data.count == 1 else {
                throw .invalidOptionLength(code: DHCPOptionCode.messageType, length: data.count)
            }
            return DHCPMessageType(rawValue: data[0])
        }
    }

    /// Option 54.
    public var serverIdentifier: IPv4Address? {
        get throws(DHCPDecodingError) {
            guard let data = self.options[DHCPOptionCode.serverIdentifier] else { return nil }
            guard data.count == 4 else {
                throw .invalidOptionLength(code: DHCPOptionCode.serverIdentifier, length: data.count)
            }
            return IPv4Address(data[0], data[1], data[2], data[3])
        }
    }

    /// Option 60 as text (invalid UTF-8 replaced).
    public var vendorClassIdentifier: String? {
        self.options[DHCPOptionCode.vendorClassIdentifier].map { String(decoding: $0, as: UTF8.self) }
    }

    /// Option 77, in either the RFC 3004 or the plain-string form.
    public var userClass: DHCPUserClass? {
        get throws(DHCPDecodingError) {
            guard let data = self.options[DHCPOptionCode.userClass] else { return nil }
            return try DHCPUserClass(decoding: data)
        }
    }

    /// Option 93: the client's architectures, most preferred first (at least one).
    public var clientArchitectures: [ClientArchitecture]? {
        get throws(DHCPDecodingError) {
            guard let data = self.options[DHCPOptionCode.clientArchitecture] else { return nil }
            guard !data.isEmpty, data.count.isMultiple(of: 2) else {
                throw .invalidOptionLength(code: DHCPOptionCode.clientArchitecture, length: data.count)
            }
            return stride(from: 0, to: data.count, by: 2).map {
                ClientArchitecture(rawValue: UInt16(data[$0]) << 8 | UInt16(data[$0 + 1]))
            }
        }
    }

    /// Option 94.
    public var clientNetworkInterface: ClientNetworkInterface? {
        get throws(DHCPDecodingError) {
            guard let data = self.options[DHCPOptionCode.clientNetworkInterface] else { return nil }
            return try ClientNetworkInterface(decoding: data)
        }
    }

    /// Option 97: type 0 followed by a 16-byte UUID.
    public var clientMachineIdentifier: ClientUUID? {
        get throws(DHCPDecodingError) {
            let code = DHCPOptionCode.clientMachineIdentifier
            guard let data = self.options[code] else { return nil }
            guard data.count == 17 else { throw .invalidOptionLength(code: code, length: data.count) }
            guard data[0] == 0, let uuid = ClientUUID(bytes: Array(data[1...])) else {
                throw .invalidOptionValue(code: code)
            }
            return uuid
        }
    }

    /// Option 43 read as encapsulated sub-options (PXE sub-options for `PXEClient`).
    public var vendorSpecificInformation: DHCPEncapsulatedOptions? {
        get throws(DHCPDecodingError) {
            let code = DHCPOptionCode.vendorSpecificInformation
            guard let data = self.options[code] else { return nil }
            return try DHCPEncapsulatedOptions(decoding: data, in: code)
        }
    }

    /// PXE sub-option 6 (discovery control) of option 43.
    public var pxeDiscoveryControl: PXEDiscoveryControl? {
        get throws(DHCPDecodingError) {
            guard let data = try self.vendorSpecificInformation?.options[PXEDiscoveryControl.subOptionCode] else {
                return nil
            }
            guard data.count == 1 else {
                throw .invalidOptionLength(code: DHCPOptionCode.vendorSpecificInformation, length: data.count)
            }
            return PXEDiscoveryControl(rawValue: data[0])
        }
    }

    /// Option 175, iPXE's encapsulated options (its presence marks an iPXE client).
    public var ipxeEncapsulatedOptions: DHCPEncapsulatedOptions? {
        get throws(DHCPDecodingError) {
            let code = DHCPOptionCode.ipxeEncapsulated
            guard let data = self.options[code] else { return nil }
            return try DHCPEncapsulatedOptions(decoding: data, in: code)
        }
    }
}
