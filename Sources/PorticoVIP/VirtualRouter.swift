/// The VRRPv3 election of one virtual router (RFC 5798 §6), as a pure state machine.
///
/// Every event is a `mutating func` that takes the current monotonic time and returns the
/// actions the shell must perform, in order. The machine owns one logical deadline at a time
/// (the earliest of its advertisement / master-down timer and its announcement schedule) and
/// asks the shell to arm a single timer for it with `.scheduleTimer(at:)`.
///
/// Safety rules beyond the RFC, from the failures of keepalived, MetalLB and kube-vip:
/// - on start (unless it owns the addresses) the machine first removes addresses a crashed
///   run may have left bound;
/// - whenever it leaves Master, `.removeAddresses` is the first action, before the priority-0
///   advertisement or anything else;
/// - a master that hears a lower-priority master re-announces at once (advertisement, and a
///   rate-limited announcement burst) instead of silently discarding;
/// - timers that fire late, and owners that change too often, are reported.
public struct VirtualRouter: Sendable {
    /// The RFC 5798 states.
    public enum State: Hashable, Sendable {
        /// Not participating (before `start`, after `shutdown`).
        case initialize
        /// Monitoring the master; holds no address.
        case backup
        /// Holding the addresses and advertising.
        case master
    }

    private enum MasterDownCause: Hashable, Sendable {
        case timeout
        case resignation
        case preemption
    }

    private enum AnnouncementPhase: Hashable, Sendable {
        case repeatBurst
        case refresh
    }

    /// After winning a conflict between two masters, the delay of the announcement burst
    /// that follows (longer than Linux's 1 s neighbour lock time).
    public static let conflictRepeatDelay: Duration = .milliseconds(1_500)

    /// The configuration, validated.
    public let configuration: VirtualRouterConfiguration
    /// The current state.
    public private(set) var state: State = .initialize
    /// Master_Adver_Interval: this node's interval, or in Backup the one the master advertises.
    public private(set) var masterAdvertisementInterval: Duration
    /// The owner of the addresses as far as this node knows.
    public private(set) var owner: Owner?
    /// Counters for `/metrics`.
    public private(set) var counters = Counters()
    /// True while more than the configured number of ownership changes fall within the window.
    public private(set) var isFlapping = false

    /// Adver_Timer in Master, Master_Down_Timer in Backup.
    private var electionDeadline: MonotonicInstant?
    private var masterDownCause = MasterDownCause.timeout
    private var announcementDeadline: MonotonicInstant?
    private var announcementPhase = AnnouncementPhase.repeatBurst
    private var lastAnnouncement: MonotonicInstant?
    private var lowerPriorityMasterSince: MonotonicInstant?
    private var reportedAddressMismatch: [VRRPAddress]?
    private var ownershipChangeTimes: [MonotonicInstant] = []
    private var lastFlapReport: MonotonicInstant?
    /// The deadline the shell's timer is armed for.
    private var armedDeadline: MonotonicInstant?

    /// A router in Initialize; throws the first rule the configuration breaks.
    public init(configuration: VirtualRouterConfiguration) throws(VirtualRouterConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.masterAdvertisementInterval = configuration.advertisementInterval
    }

    /// Skew_Time = ((256 - priority) * Master_Adver_Interval) / 256, computed exactly rather than
    /// truncated to centiseconds.
    public var skewTime: Duration {
        masterAdvertisementInterval * (256 - Int(configuration.priority)) / 256
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    public var masterDownInterval: Duration { masterAdvertisementInterval * 3 + skewTime }

    /// The earliest instant at which `timerFired(now:)` has work to do.
    public var nextDeadline: MonotonicInstant? {
        switch (electionDeadline, announcementDeadline) {
        case (let election?, let announcement?): min(election, announcement)
        case (let election, nil): election
        case (nil, let announcement): announcement
        }
    }

    /// The advertisement this node sends with `priority` (its own, or 0 to resign).
    public func advertisement(priority: UInt8) -> Advertisement {
        Advertisement(
            virtualRouterID: configuration.virtualRouterID,
            priority: priority,
            maximumAdvertisementIntervalCentiseconds: configuration.advertisementIntervalCentiseconds ?? 100,
            addresses: configuration.virtualAddresses
        )
    }

    // MARK: Events

    /// The Startup event (§6.4.1): the address owner becomes Master at once; any other node
    /// removes leftover addresses and waits in Backup for the master-down interval.
    public mutating func start(now: MonotonicInstant) -> [Action] {
        guard state == .initialize else { return [] }
        var actions: [Action] = []
        masterAdvertisementInterval = configuration.advertisementInterval
        if configuration.priority == 255 {
            becomeMaster(now: now, reason: .startedAsAddressOwner, actions: &actions)
        } else {
            actions.append(.removeAddresses(configuration.virtualAddresses))
            enterBackup(now: now)
            electionDeadline = now + masterDownInterval
        }
        appendTimer(to: &actions)
        return actions
    }

    /// The Shutdown event (§6.4.2, §6.4.3): a master removes its addresses first, then resigns
    /// with a priority-0 advertisement; a backup just stops.
    public mutating func shutdown(now: MonotonicInstant) -> [Action] {
        var actions: [Action] = []
        switch state {
        case .initialize:
            return []
        case .backup:
            owner = nil
        case .master:
            actions.append(.removeAddresses(configuration.virtualAddresses))
            sendAdvertisement(priority: 0, actions: &actions)
            recordOwnership(nil, reason: .shutdown, now: now, actions: &actions)
        }
        state = .initialize
        electionDeadline = nil
        announcementDeadline = nil
        lowerPriorityMasterSince = nil
        appendTimer(to: &actions)
        return actions
    }

    /// An advertisement that passed `Advertisement.decode` (TTL, version, length, checksum),
    /// received from `source`, the sender's primary address.
    public mutating func receivedAdvertisement(
        _ advertisement: Advertisement,
        from source: VRRPAddress,
        now: MonotonicInstant
    ) -> [Action] {
        guard state != .initialize, advertisement.virtualRouterID == configuration.virtualRouterID,
            source.family == configuration.primaryAddress.family, source != configuration.primaryAddress
        else {
            counters.advertisementsIgnored += 1
            return []
        }
        counters.advertisementsReceived += 1
        if advertisement.priority == 0 { counters.resignationsReceived += 1 }
        var actions: [Action] = []
        switch state {
        case .initialize:
            break
        case .backup:
            backupReceived(advertisement, from: source, now: now, actions: &actions)
        case .master:
            masterReceived(advertisement, from: source, now: now, actions: &actions)
        }
        appendTimer(to: &actions)
        return actions
    }

    /// The shell's timer expired (or it polls): runs every deadline that is due by `now`.
    /// Firing early is harmless; the timer is re-armed.
    public mutating func timerFired(now: MonotonicInstant) -> [Action] {
        armedDeadline = nil
        var actions: [Action] = []
        if state != .initialize, let deadline = electionDeadline, now >= deadline {
            let isMaster = state == .master
            let interval = isMaster ? configuration.advertisementInterval : masterAdvertisementInterval
            let threshold = configuration.lateTimerThreshold ?? interval / 2
            let lateness = now - deadline
            if lateness > threshold {
                counters.lateTimers += 1
                let kind: TimerKind = isMaster ? .advertisement : .masterDown
                actions.append(.timerFiredLate(LateTimer(kind: kind, lateness: lateness, threshold: threshold)))
            }
            if isMaster {
                sendAdvertisement(priority: configuration.priority, actions: &actions)
                electionDeadline = now + configuration.advertisementInterval
            } else {
                let reason: OwnershipChangeReason =
                    switch masterDownCause {
                    case .timeout: .peerTimeout
                    case .resignation: .peerResigned
                    case .preemption: .preemptedLowerPriority
                    }
                becomeMaster(now: now, reason: reason, actions: &actions)
            }
        }
        if state == .master, let deadline = announcementDeadline, now >= deadline {
            switch announcementPhase {
            case .repeatBurst:
                announce(repetitions: configuration.announcements.burstCount, now: now, actions: &actions)
            case .refresh:
                announce(repetitions: 1, now: now, actions: &actions)
            }
            announcementPhase = .refresh
            announcementDeadline = configuration.announcements.refreshInterval.map { now + $0 }
        }
        appendTimer(to: &actions)
        return actions
    }
}

extension VirtualRouter {
    // MARK: Transitions

    private mutating func becomeMaster(
        now: MonotonicInstant,
        reason: OwnershipChangeReason,
        actions: inout [Action]
    ) {
        state = .master
        counters.becameMaster += 1
        lowerPriorityMasterSince = nil
        masterAdvertisementInterval = configuration.advertisementInterval
        let accept = configuration.acceptMode || configuration.priority == 255
        actions.append(.addAddresses(configuration.virtualAddresses, acceptTraffic: accept))
        sendAdvertisement(priority: configuration.priority, actions: &actions)
        announce(repetitions: configuration.announcements.burstCount, now: now, actions: &actions)
        electionDeadline = now + configuration.advertisementInterval
        if let repeatDelay = configuration.announcements.repeatDelay {
            announcementPhase = .repeatBurst
            announcementDeadline = now + repeatDelay
        } else {
            announcementPhase = .refresh
            announcementDeadline = configuration.announcements.refreshInterval.map { now + $0 }
        }
        recordOwnership(.local, reason: reason, now: now, actions: &actions)
    }

    /// Master to Backup: the addresses go first.
    private mutating func stepDown(
        to peer: VRRPAddress,
        learnedInterval: Duration,
        reason: OwnershipChangeReason,
        now: MonotonicInstant,
        actions: inout [Action]
    ) {
        actions.append(.removeAddresses(configuration.virtualAddresses))
        // One last advertisement at this node's priority, so that the winner hears that there
        // were two masters and re-announces: neighbours that followed this node's announcements
        // (after a partition heals) would otherwise keep sending to it until their cache expires.
        // The winner's own advertisement may have reached this node first and be all it sends.
        sendAdvertisement(priority: configuration.priority, actions: &actions)
        enterBackup(now: now)
        masterAdvertisementInterval = learnedInterval
        electionDeadline = now + masterDownInterval
        recordOwnership(.peer(peer), reason: reason, now: now, actions: &actions)
    }

    private mutating func enterBackup(now: MonotonicInstant) {
        state = .backup
        counters.becameBackup += 1
        masterDownCause = .timeout
        announcementDeadline = nil
        lowerPriorityMasterSince = nil
    }

    private mutating func backupReceived(
        _ advertisement: Advertisement,
        from source: VRRPAddress,
        now: MonotonicInstant,
        actions: inout [Action]
    ) {
        if advertisement.priority == 0 {
            // §6.4.2: the master resigned; take over after Skew_Time only.
            electionDeadline = now + skewTime
            masterDownCause = .resignation
            return
        }
        if !configuration.preempt || advertisement.priority >= configuration.priority {
            lowerPriorityMasterSince = nil
            acceptAsBackup(advertisement, from: source, now: now, actions: &actions)
            return
        }
        // A lower-priority master and preemption on: accept it while the preempt delay runs,
        // then discard its advertisements so that the master-down timer expires.
        let since = lowerPriorityMasterSince ?? now
        lowerPriorityMasterSince = since
        let preemptAt = since + configuration.preemptDelay
        if now < preemptAt {
            acceptAsBackup(advertisement, from: source, now: now, actions: &actions)
            if let deadline = electionDeadline, preemptAt < deadline {
                electionDeadline = preemptAt
                masterDownCause = .preemption
            }
        } else {
            if masterDownCause == .timeout { masterDownCause = .preemption }
            recordOwnership(.peer(source), reason: .peerAdvertised, now: now, actions: &actions)
        }
    }

    /// §6.4.2: learn the master's interval and restart the master-down timer.
    private mutating func acceptAsBackup(
        _ advertisement: Advertisement,
        from source: VRRPAddress,
        now: MonotonicInstant,
        actions: inout [Action]
    ) {
        masterAdvertisementInterval = advertisement.maximumAdvertisementInterval
        electionDeadline = now + masterDownInterval
        masterDownCause = .timeout
        recordOwnership(.peer(source), reason: .peerAdvertised, now: now, actions: &actions)
        if Set(advertisement.addresses) != Set(configuration.virtualAddresses) {
            if reportedAddressMismatch != advertisement.addresses {
                reportedAddressMismatch = advertisement.addresses
                actions.append(.peerAddressesDiffer(peer: source, advertised: advertisement.addresses))
            }
        } else {
            reportedAddressMismatch = nil
        }
    }

    private mutating func masterReceived(
        _ advertisement: Advertisement,
        from source: VRRPAddress,
        now: MonotonicInstant,
        actions: inout [Action]
    ) {
        let priority = configuration.priority
        if advertisement.priority == 0 {
            // §6.4.3: another master resigned; assert this one at once.
            sendAdvertisement(priority: priority, actions: &actions)
            electionDeadline = now + configuration.advertisementInterval
        } else if advertisement.priority > priority {
            stepDown(
                to: source,
                learnedInterval: advertisement.maximumAdvertisementInterval,
                reason: .higherPriorityPeer(advertisement.priority),
                now: now,
                actions: &actions
            )
        } else if advertisement.priority == priority && source > configuration.primaryAddress {
            stepDown(
                to: source,
                learnedInterval: advertisement.maximumAdvertisementInterval,
                reason: .tieBrokenByHigherAddress,
                now: now,
                actions: &actions
            )
        } else {
            // Two masters, this one wins: re-announce so the other steps down and neighbours
            // that followed its announcements point back here.
            sendAdvertisement(priority: priority, actions: &actions)
            electionDeadline = now + configuration.advertisementInterval
            let minimumGap = max(configuration.advertisementInterval, .seconds(1))
            if lastAnnouncement.map({ now - $0 >= minimumGap }) ?? true {
                announce(repetitions: 1, now: now, actions: &actions)
            }
            // Neighbours ignore an ARP update within their lock time (Linux: 1 s) of the
            // previous one, which the other master may just have sent: a burst follows once
            // that has passed, so that after a partition heals they point here again.
            let again = now + Self.conflictRepeatDelay
            if announcementDeadline.map({ again < $0 }) ?? true {
                announcementPhase = .repeatBurst
                announcementDeadline = again
            }
        }
    }

    // MARK: Helpers

    private mutating func sendAdvertisement(priority: UInt8, actions: inout [Action]) {
        counters.advertisementsSent += 1
        actions.append(.sendAdvertisement(advertisement(priority: priority)))
    }

    private mutating func announce(repetitions: Int, now: MonotonicInstant, actions: inout [Action]) {
        lastAnnouncement = now
        actions.append(.announceAddresses(configuration.virtualAddresses, repetitions: repetitions))
    }

    /// Records a change of owner; changes from a known owner count towards flap detection.
    private mutating func recordOwnership(
        _ newOwner: Owner?,
        reason: OwnershipChangeReason,
        now: MonotonicInstant,
        actions: inout [Action]
    ) {
        guard newOwner != owner else { return }
        let change = OwnershipChange(
            virtualRouterID: configuration.virtualRouterID,
            previousOwner: owner,
            newOwner: newOwner,
            reason: reason,
            at: now
        )
        owner = newOwner
        actions.append(.ownershipChanged(change))
        guard change.previousOwner != nil else { return }
        counters.ownershipChanges += 1
        let window = configuration.flapDetection.window
        ownershipChangeTimes.append(now)
        ownershipChangeTimes.removeAll { now - $0 >= window }
        guard ownershipChangeTimes.count > configuration.flapDetection.maximumChanges else {
            isFlapping = false
            return
        }
        // Report on crossing the threshold, then again once per window while it persists.
        if !isFlapping || lastFlapReport.map({ now - $0 >= window }) ?? true {
            isFlapping = true
            lastFlapReport = now
            counters.flapReports += 1
            let report = FlapReport(
                virtualRouterID: configuration.virtualRouterID,
                changes: ownershipChangeTimes.count,
                window: window,
                lastChange: change
            )
            actions.append(.flapping(report))
        }
    }

    /// Re-arms the shell's timer when the earliest deadline changed.
    private mutating func appendTimer(to actions: inout [Action]) {
        let next = nextDeadline
        guard next != armedDeadline else { return }
        armedDeadline = next
        actions.append(next.map { .scheduleTimer(at: $0) } ?? .cancelTimer)
    }
}
