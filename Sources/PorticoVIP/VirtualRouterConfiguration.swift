/// How one virtual router (one VRID, one address family, one interface) behaves.
public struct VirtualRouterConfiguration: Hashable, Sendable {
    /// The virtual router identifier, 1-255, shared by every node of the group.
    public var virtualRouterID: UInt8
    /// This node's priority, 1-255; 255 means this node owns the addresses and becomes
    /// master at once on start. Higher wins; equal priorities break ties by primary address.
    public var priority: UInt8
    /// How often a master advertises: a multiple of 10 ms from 10 ms to 40.95 s.
    public var advertisementInterval: Duration
    /// Whether a higher-priority backup takes over from a lower-priority master (RFC default: yes).
    public var preempt: Bool
    /// How long a backup keeps accepting a lower-priority master before preempting it,
    /// counted from the first such advertisement (keepalived's `preempt_delay`).
    public var preemptDelay: Duration
    /// Whether a master that is not the owner accepts traffic to the virtual addresses
    /// (RFC 5798 Accept_Mode). Portico serves on them, so the default is true.
    public var acceptMode: Bool
    /// The address this node sends advertisements from (IPv6: its link-local address).
    public var primaryAddress: VRRPAddress
    /// The addresses the master holds, all of the primary address's family.
    public var virtualAddresses: [VRRPAddress]
    /// When the master announces its addresses with gratuitous ARP / unsolicited NA.
    public var announcements: AnnouncementSchedule
    /// A timer that fires more than this late is reported (CPU starvation, the classic cause
    /// of two masters). Nil means half of the interval the timer belongs to.
    public var lateTimerThreshold: Duration?
    /// More than `maximumChanges` ownership changes within `window` are reported as flapping.
    public var flapDetection: FlapDetection

    /// A configuration with Portico's defaults: 1 s adverts, preempt without delay, accept mode,
    /// keepalived's announcement bursts, a 60 s refresh, flapping at more than 4 changes a minute.
    public init(
        virtualRouterID: UInt8,
        priority: UInt8 = 100,
        advertisementInterval: Duration = .seconds(1),
        preempt: Bool = true,
        preemptDelay: Duration = .zero,
        acceptMode: Bool = true,
        primaryAddress: VRRPAddress,
        virtualAddresses: [VRRPAddress],
        announcements: AnnouncementSchedule = AnnouncementSchedule(),
        lateTimerThreshold: Duration? = nil,
        flapDetection: FlapDetection = FlapDetection()
    ) {
        self.virtualRouterID = virtualRouterID
        self.priority = priority
        self.advertisementInterval = advertisementInterval
        self.preempt = preempt
        self.preemptDelay = preemptDelay
        self.acceptMode = acceptMode
        self.primaryAddress = primaryAddress
        self.virtualAddresses = virtualAddresses
        self.announcements = announcements
        self.lateTimerThreshold = lateTimerThreshold
        self.flapDetection = flapDetection
    }

    /// The advertisement interval in centiseconds, if it is valid.
    var advertisementIntervalCentiseconds: UInt16? {
        let (seconds, attoseconds) = advertisementInterval.components
        let attosecondsPerCentisecond: Int64 = 10_000_000_000_000_000
        guard seconds >= 0, seconds < 41, attoseconds % attosecondsPerCentisecond == 0 else { return nil }
        let centiseconds = seconds * 100 + attoseconds / attosecondsPerCentisecond
        guard (1...Int64(Advertisement.maximumIntervalCentiseconds)).contains(centiseconds) else { return nil }
        return UInt16(centiseconds)
    }

    /// Checks every rule; the first one broken is thrown.
    public func validate() throws(VirtualRouterConfigurationError) {
        guard virtualRouterID != 0 else { throw .virtualRouterIDZero }
        guard priority != 0 else { throw .priorityZero }
        guard advertisementIntervalCentiseconds != nil else {
            throw .advertisementIntervalInvalid(advertisementInterval)
        }
        guard preemptDelay >= .zero else { throw .negativeDuration("preemptDelay") }
        guard (1...255).contains(virtualAddresses.count) else {
            throw .virtualAddressCount(virtualAddresses.count)
        }
        for address in virtualAddresses where address.family != primaryAddress.family {
            throw .familyMismatch(address)
        }
        guard Set(virtualAddresses).count == virtualAddresses.count else { throw .duplicateVirtualAddress }
        if primaryAddress.family == .ipv6 && !primaryAddress.isIPv6LinkLocal {
            throw .primaryAddressNotLinkLocal(primaryAddress)
        }
        try announcements.validate()
        try flapDetection.validate()
        if let lateTimerThreshold, lateTimerThreshold <= .zero { throw .negativeDuration("lateTimerThreshold") }
    }
}

/// When a master announces its addresses: a burst on becoming master, a second burst a
/// little later (keepalived: 5 and 5 more after 5 s), then periodic refreshes so switches and
/// neighbours that aged the mapping out (after a partition heals) learn it again.
public struct AnnouncementSchedule: Hashable, Sendable {
    /// Announcements per address in each burst (each is a gratuitous ARP request and reply,
    /// or an unsolicited neighbour advertisement).
    public var burstCount: Int
    /// Delay between the first and the second burst; nil for a single burst.
    public var repeatDelay: Duration?
    /// Interval of the single-announcement refreshes while master; nil to disable.
    public var refreshInterval: Duration?

    /// keepalived's bursts (5, and 5 more after 5 s) and a refresh every 60 s.
    public init(burstCount: Int = 5, repeatDelay: Duration? = .seconds(5), refreshInterval: Duration? = .seconds(60)) {
        self.burstCount = burstCount
        self.repeatDelay = repeatDelay
        self.refreshInterval = refreshInterval
    }

    func validate() throws(VirtualRouterConfigurationError) {
        guard burstCount >= 1 else { throw .announcementBurstCount(burstCount) }
        if let repeatDelay, repeatDelay <= .zero { throw .negativeDuration("announcements.repeatDelay") }
        if let refreshInterval, refreshInterval <= .zero { throw .negativeDuration("announcements.refreshInterval") }
    }
}

/// Flapping: more than `maximumChanges` ownership changes within `window`.
public struct FlapDetection: Hashable, Sendable {
    /// The number of changes tolerated within the window.
    public var maximumChanges: Int
    /// The sliding window.
    public var window: Duration

    /// More than 4 changes within a minute by default.
    public init(maximumChanges: Int = 4, window: Duration = .seconds(60)) {
        self.maximumChanges = maximumChanges
        self.window = window
    }

    func validate() throws(VirtualRouterConfigurationError) {
        guard maximumChanges >= 1 else { throw .flapThreshold(maximumChanges) }
        guard window > .zero else { throw .negativeDuration("flapDetection.window") }
    }
}

/// A rule of `VirtualRouterConfiguration` that a configuration breaks.
public enum VirtualRouterConfigurationError: Error, Hashable, Sendable {
    /// VRID 0 is reserved.
    case virtualRouterIDZero
    /// Priority 0 is reserved for resignation.
    case priorityZero
    /// Not a multiple of 10 ms within 10 ms...40.95 s.
    case advertisementIntervalInvalid(Duration)
    /// A duration that must be positive (or non-negative) is not; names the field.
    case negativeDuration(String)
    /// A virtual router carries 1-255 addresses.
    case virtualAddressCount(Int)
    /// A virtual address of another family than the primary address.
    case familyMismatch(VRRPAddress)
    /// The same virtual address is listed twice.
    case duplicateVirtualAddress
    /// IPv6 advertisements must come from a link-local address (RFC 5798 §5.1.2.1).
    case primaryAddressNotLinkLocal(VRRPAddress)
    /// A burst needs at least one announcement.
    case announcementBurstCount(Int)
    /// Flap detection needs a threshold of at least one change.
    case flapThreshold(Int)
}
