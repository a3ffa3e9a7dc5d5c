extension VirtualRouter {
    /// Something the shell must do, in the order the actions are returned.
    public enum Action: Hashable, Sendable {
        /// Multicast (or send to each unicast peer) this advertisement with TTL / hop limit 255.
        /// Priority 0 means this node resigns.
        case sendAdvertisement(Advertisement)
        /// Add the addresses to the interface (netlink RTM_NEWADDR, /32 or /128, NODAD).
        /// When `acceptTraffic` is false the shell must drop traffic to them (RFC 5798 Accept_Mode).
        case addAddresses([VRRPAddress], acceptTraffic: Bool)
        /// Remove the addresses from the interface (RTM_DELADDR); absent addresses are not an error.
        /// Always the first action when mastership is lost, and the first on start.
        case removeAddresses([VRRPAddress])
        /// Announce each address `repetitions` times: gratuitous ARP in request and reply form
        /// for IPv4, unsolicited neighbour advertisement (S=0, O=1, with the link-layer
        /// address option) to ff02::1 for IPv6.
        case announceAddresses([VRRPAddress], repetitions: Int)
        /// Arm the shell's single timer for this instant, replacing any earlier one; call
        /// `timerFired(now:)` when it expires.
        case scheduleTimer(at: MonotonicInstant)
        /// Disarm the shell's timer.
        case cancelTimer
        /// Log and count: the owner of the addresses changed.
        case ownershipChanged(OwnershipChange)
        /// Log and count: a timer fired late (CPU starvation).
        case timerFiredLate(LateTimer)
        /// Report loudly: the owner changes too often.
        case flapping(FlapReport)
        /// Log: the master advertises other addresses than this node is configured with.
        case peerAddressesDiffer(peer: VRRPAddress, advertised: [VRRPAddress])
    }

    /// A node that holds (or held) the addresses.
    public enum Owner: Hashable, Sendable, CustomStringConvertible {
        /// This node.
        case local
        /// The node with this primary address.
        case peer(VRRPAddress)

        public var description: String {
            switch self {
            case .local: "this node"
            case .peer(let address): "peer \(address)"
            }
        }
    }

    /// Why the owner changed.
    public enum OwnershipChangeReason: Hashable, Sendable, CustomStringConvertible {
        /// This node has priority 255 (address owner) and started as master.
        case startedAsAddressOwner
        /// No advertisement within the master-down interval: the master died or is cut off.
        case peerTimeout
        /// The master resigned with a priority-0 advertisement.
        case peerResigned
        /// This node preempted a lower-priority master.
        case preemptedLowerPriority
        /// A higher-priority master was heard.
        case higherPriorityPeer(UInt8)
        /// A master of equal priority and higher primary address was heard.
        case tieBrokenByHigherAddress
        /// Another peer started advertising as master (seen from backup).
        case peerAdvertised
        /// This node shut down and resigned.
        case shutdown

        public var description: String {
            switch self {
            case .startedAsAddressOwner: "startup as address owner (priority 255)"
            case .peerTimeout: "peer timeout (no advertisement within the master-down interval)"
            case .peerResigned: "the master resigned (priority 0)"
            case .preemptedLowerPriority: "preempted a lower-priority master"
            case .higherPriorityPeer(let priority): "higher-priority master (\(priority)) heard"
            case .tieBrokenByHigherAddress: "equal-priority master with a higher address heard"
            case .peerAdvertised: "a new master advertised"
            case .shutdown: "shutdown (resigned with priority 0)"
            }
        }
    }

    /// One change of owner.
    public struct OwnershipChange: Hashable, Sendable {
        /// The virtual router.
        public var virtualRouterID: UInt8
        /// The owner before, nil when unknown (just started).
        public var previousOwner: Owner?
        /// The owner after, nil when unknown (this node left the group).
        public var newOwner: Owner?
        /// Why.
        public var reason: OwnershipChangeReason
        /// When.
        public var at: MonotonicInstant

        /// A change from its fields.
        public init(
            virtualRouterID: UInt8,
            previousOwner: Owner?,
            newOwner: Owner?,
            reason: OwnershipChangeReason,
            at: MonotonicInstant
        ) {
            self.virtualRouterID = virtualRouterID
            self.previousOwner = previousOwner
            self.newOwner = newOwner
            self.reason = reason
            self.at = at
        }
    }

    /// Which timer fired late.
    public enum TimerKind: Hashable, Sendable {
        /// The master's advertisement timer: backups may have taken over meanwhile.
        case advertisement
        /// The backup's master-down timer.
        case masterDown
    }

    /// A timer that fired later than the threshold.
    public struct LateTimer: Hashable, Sendable {
        /// Which timer.
        public var kind: TimerKind
        /// How late it fired.
        public var lateness: Duration
        /// The threshold it exceeded.
        public var threshold: Duration

        /// A report from its fields.
        public init(kind: TimerKind, lateness: Duration, threshold: Duration) {
            self.kind = kind
            self.lateness = lateness
            self.threshold = threshold
        }
    }

    /// The owner changes too often.
    public struct FlapReport: Hashable, Sendable {
        /// The virtual router.
        public var virtualRouterID: UInt8
        /// Changes within the window (more than the configured maximum).
        public var changes: Int
        /// The window.
        public var window: Duration
        /// The most recent change.
        public var lastChange: OwnershipChange

        /// A report from its fields.
        public init(virtualRouterID: UInt8, changes: Int, window: Duration, lastChange: OwnershipChange) {
            self.virtualRouterID = virtualRouterID
            self.changes = changes
            self.window = window
            self.lastChange = lastChange
        }
    }

    /// Counters for `/metrics`.
    public struct Counters: Hashable, Sendable {
        /// Transitions to Master.
        public var becameMaster = 0
        /// Transitions to Backup.
        public var becameBackup = 0
        /// Owner changes, however observed.
        public var ownershipChanges = 0
        /// Advertisements sent (including priority 0).
        public var advertisementsSent = 0
        /// Advertisements received and processed.
        public var advertisementsReceived = 0
        /// Advertisements ignored (another VRID or family, or this node's own).
        public var advertisementsIgnored = 0
        /// Priority-0 advertisements received.
        public var resignationsReceived = 0
        /// Timers that fired later than the threshold.
        public var lateTimers = 0
        /// Flapping reports.
        public var flapReports = 0
    }
}
