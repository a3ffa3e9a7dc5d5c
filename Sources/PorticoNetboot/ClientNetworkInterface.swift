/// Option 94, client network interface identifier (RFC 4578): type 1 (UNDI) and its version.
public struct ClientNetworkInterface: Hashable, Sendable {
    /// UNDI major version.
    public var major: UInt8
    /// UNDI minor version.
    public var minor: UInt8

    /// A UNDI interface version.
    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }

    /// Reads the three-byte option; anything but type 1 is invalid.
    public init(decoding data: [UInt8]) throws(DHCPDecodingError) {
        let code = DHCPOptionCode.clientNetworkInterface
        guard data.count == 3 else { throw .invalidOptionLength(code: code, length: data.count) }
        guard data[0] == 1 else { throw .invalidOptionValue(code: code) }
        self.major = data[1]
        self.minor = data[2]
    }
}
