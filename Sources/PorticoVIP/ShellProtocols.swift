/// A VRRP packet as the transport received it.
public struct ReceivedPacket: Hashable, Sendable {
    /// The VRRP packet (the IP payload).
    public var payload: [UInt8]
    /// The IP source address.
    public var source: VRRPAddress
    /// The IP destination address.
    public var destination: VRRPAddress
    /// The received IPv4 TTL or IPv6 hop limit.
    public var hopLimit: UInt8

    /// A packet from its fields.
    public init(payload: [UInt8], source: VRRPAddress, destination: VRRPAddress, hopLimit: UInt8) {
        self.payload = payload
        self.source = source
        self.destination = destination
        self.hopLimit = hopLimit
    }
}

/// Sends and receives VRRP packets (IP protocol 112) of one family on one interface.
public protocol AdvertisementTransport: AnyObject {
    /// Sends `packet` from `source` to `destination` (the multicast group or a unicast peer)
    /// with TTL / hop limit 255.
    func send(_ packet: [UInt8], from source: VRRPAddress, to destination: VRRPAddress) throws
    /// Waits at most `timeout` (zero: does not wait) for one packet; nil on timeout.
    func receive(timeout: Duration) throws -> ReceivedPacket?
}

/// Adds and removes host addresses on the interface.
public protocol InterfaceAddressing: AnyObject {
    /// Adds the addresses (/32 or /128); addresses already present are not an error.
    func add(_ addresses: [VRRPAddress]) throws
    /// Removes the addresses; absent addresses are not an error.
    func remove(_ addresses: [VRRPAddress]) throws
}

/// Announces that this node now holds an address: gratuitous ARP (both forms) or an
/// unsolicited neighbour advertisement.
public protocol NeighbourAnnouncing: AnyObject {
    /// Sends one announcement round for `address`.
    func announce(_ address: VRRPAddress) throws
}

/// The source of `now` for the driver.
public protocol MonotonicClock: AnyObject {
    /// The current monotonic time.
    func now() -> MonotonicInstant
}

/// What the driver reports to logs and metrics.
public enum VirtualRouterEvent: Sendable {
    /// A reporting action of a virtual router (ownership change, late timer, flapping,
    /// address mismatch).
    case report(virtualRouterID: UInt8, VirtualRouter.Action)
    /// A received packet failed validation.
    case rejected(source: VRRPAddress, AdvertisementDecodingError)
    /// An advertisement for a VRID this node does not run.
    case unknownVirtualRouter(UInt8, source: VRRPAddress)
    /// Performing an action failed; the machine carries on (the next advertisement, refresh or
    /// election retries it).
    case failed(virtualRouterID: UInt8, VirtualRouter.Action, any Error)
}
