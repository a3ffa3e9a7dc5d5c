/// Option 53, the DHCP message type. Values without a name here are kept as they are.
public struct DHCPMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The option's single byte.
    public var rawValue: UInt8

    /// The type with value `rawValue`.
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// 1.
    public static let discover = DHCPMessageType(rawValue: 1)
    /// 2.
    public static let offer = DHCPMessageType(rawValue: 2)
    /// 3.
    public static let request = DHCPMessageType(rawValue: 3)
    /// 4.
    public static let decline = DHCPMessageType(rawValue: 4)
    /// 5.
    public static let acknowledgement = DHCPMessageType(rawValue: 5)
    /// 6.
    public static let negativeAcknowledgement = DHCPMessageType(rawValue: 6)
    /// 7.
    public static let release = DHCPMessageType(rawValue: 7)
    /// 8.
    public static let inform = DHCPMessageType(rawValue: 8)

    /// `DISCOVER`, `OFFER`, ... or the number.
    public var description: String {
        let names = ["DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"]
        return (1...8).contains(self.rawValue) ? names[Int(self.rawValue) - 1] : "type \(self.rawValue)"
    }
}
