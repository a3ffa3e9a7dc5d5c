/// The parts of a received IPv4 header that VRRP validation needs. Raw IPv4 sockets deliver
/// the header with the payload; this finds the payload and reads the TTL and addresses.
public struct IPv4PacketView: Hashable, Sendable {
    /// The source address.
    public var source: VRRPAddress
    /// The destination address.
    public var destination: VRRPAddress
    /// The time to live.
    public var timeToLive: UInt8
    /// The IP protocol.
    public var ipProtocol: UInt8
    /// The bytes after the header, bounded by the header's total length.
    public var payload: ArraySlice<UInt8>

    /// Parses the header of `packet`; nil if it is not a well-formed, unfragmented IPv4 header.
    public init?(_ packet: [UInt8]) {
        guard packet.count >= 20, packet[0] >> 4 == 4 else { return nil }
        let headerLength = Int(packet[0] & 0x0F) * 4
        let totalLength = Int(packet[2]) << 8 | Int(packet[3])
        let fragment = UInt16(packet[6] & 0x3F) << 8 | UInt16(packet[7])  // MF flag and offset
        guard headerLength >= 20, totalLength >= headerLength, packet.count >= totalLength, fragment == 0,
            let source = VRRPAddress(bytes: packet[12..<16]),
            let destination = VRRPAddress(bytes: packet[16..<20])
        else { return nil }
        self.source = source
        self.destination = destination
        self.timeToLive = packet[8]
        self.ipProtocol = packet[9]
        self.payload = packet[headerLength..<totalLength]
    }
}
