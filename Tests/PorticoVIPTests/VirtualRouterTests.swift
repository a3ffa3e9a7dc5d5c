import PorticoVIP
import Testing

typealias Action = VirtualRouter.Action

let virtualAddress = VRRPAddress(literal: "10.0.0.100")
let localAddress = VRRPAddress(literal: "10.0.0.2")
let lowerPeer = VRRPAddress(literal: "10.0.0.1")
let higherPeer = VRRPAddress(literal: "10.0.0.3")

func configuration(
    priority: UInt8 = 100,
    interval: Duration = .seconds(1),
    preempt: Bool = true,
    preemptDelay: Duration = .zero,
    announcements: AnnouncementSchedule = AnnouncementSchedule(),
    flapDetection: FlapDetection = FlapDetection()
) -> VirtualRouterConfiguration {
    VirtualRouterConfiguration(
        virtualRouterID: 42,
        priority: priority,
        advertisementInterval: interval,
        preempt: preempt,
        preemptDelay: preemptDelay,
        primaryAddress: localAddress,
        virtualAddresses: [virtualAddress],
        announcements: announcements,
        flapDetection: flapDetection
    )
}

func router(_ configuration: VirtualRouterConfiguration = configuration()) throws -> VirtualRouter {
    try VirtualRouter(configuration: configuration)
}

func advert(priority: UInt8, centiseconds: UInt16 = 100, addresses: [VRRPAddress] = [virtualAddress]) -> Advertisement {
    Advertisement(
        virtualRouterID: 42,
        priority: priority,
        maximumAdvertisementIntervalCentiseconds: centiseconds,
        addresses: addresses
    )
}

/// The ownership changes among `actions`.
func changes(_ actions: [Action]) -> [VirtualRouter.OwnershipChange] {
    actions.compactMap {
        if case .ownershipChanged(let change) = $0 { return change }
        return nil
    }
}

/// A router that started at 0 and became master through the master-down timer at `now`.
func masterRouter(_ configuration: VirtualRouterConfiguration = configuration()) throws -> VirtualRouter {
    var router = try router(configuration)
    _ = router.start(now: at(0))
    _ = router.timerFired(now: at(0) + router.masterDownInterval)
    #expect(router.state == .master)
    return router
}

@Suite("VRRPv3 state machine: timers and configuration")
struct VirtualRouterTimingTests {
    @Test func computesSkewAndMasterDownInterval() throws {
        let defaults = try router()
        #expect(defaults.skewTime == .microseconds(609_375))  // (256 - 100) * 1 s / 256
        #expect(defaults.masterDownInterval == .microseconds(3_609_375))
        let fast = try router(configuration(priority: 200, interval: .milliseconds(100)))
        #expect(fast.skewTime == .microseconds(21_875))
        #expect(fast.masterDownInterval == .microseconds(321_875))  // keepalived's ~0.32 s failover
        let owner = try router(configuration(priority: 255))
        #expect(owner.skewTime == .microseconds(3_906.25))
    }

    @Test func rejectsInvalidConfigurations() {
        var zeroID = configuration()
        zeroID.virtualRouterID = 0
        #expect(throws: VirtualRouterConfigurationError.virtualRouterIDZero) {
            try VirtualRouter(configuration: zeroID)
        }
        #expect(throws: VirtualRouterConfigurationError.priorityZero) { try router(configuration(priority: 0)) }
        for interval: Duration in [.zero, .milliseconds(15), .seconds(41), .milliseconds(-10)] {
            #expect(throws: VirtualRouterConfigurationError.advertisementIntervalInvalid(interval)) {
                try router(configuration(interval: interval))
            }
        }
        #expect(throws: Never.self) { try router(configuration(interval: .milliseconds(40_950))) }
        var mixed = configuration()
        mixed.virtualAddresses.append(VRRPAddress(literal: "2001:db8::1"))
        #expect(throws: VirtualRouterConfigurationError.familyMismatch(VRRPAddress(literal: "2001:db8::1"))) {
            try VirtualRouter(configuration: mixed)
        }
        var globalIPv6 = configuration()
        globalIPv6.primaryAddress = VRRPAddress(literal: "2001:db8::2")
        globalIPv6.virtualAddresses = [VRRPAddress(literal: "2001:db8::1")]
        #expect(throws: VirtualRouterConfigurationError.primaryAddressNotLinkLocal(globalIPv6.primaryAddress)) {
            try VirtualRouter(configuration: globalIPv6)
        }
        var empty = configuration()
        empty.virtualAddresses = []
        #expect(throws: VirtualRouterConfigurationError.virtualAddressCount(0)) {
            try VirtualRouter(configuration: empty)
        }
    }

    @Test func masterSendsAdvertisementEveryInterval() throws {
        var router = try masterRouter()
        let becameMasterAt = at(0) + router.masterDownInterval
        let actions = router.timerFired(now: becameMasterAt + .seconds(1))
        #expect(
            actions == [.sendAdvertisement(advert(priority: 100)), .scheduleTimer(at: becameMasterAt + .seconds(2))]
        )
    }

    @Test func earlyTimerIsHarmlessAndReArmed() throws {
        var router = try router()
        _ = router.start(now: at(0))
        let actions = router.timerFired(now: at(100))
        #expect(actions == [.scheduleTimer(at: at(3_609) + .microseconds(375))])
        #expect(router.state == .backup)
    }

    @Test func reportsLateAdvertisementTimer() throws {
        var router = try masterRouter()
        let deadline = try #require(router.nextDeadline)
        let onTime = router.timerFired(now: deadline + .milliseconds(400))
        #expect(!onTime.contains { if case .timerFiredLate = $0 { true } else { false } })
        let next = try #require(router.nextDeadline)
        let late = router.timerFired(now: next + .milliseconds(600))
        let report = VirtualRouter.LateTimer(
            kind: .advertisement,
            lateness: .milliseconds(600),
            threshold: .milliseconds(500)
        )
        #expect(late.first == .timerFiredLate(report))
        #expect(late.contains(.sendAdvertisement(advert(priority: 100))))
        #expect(router.counters.lateTimers == 1)
    }

    @Test func reportsLateMasterDownTimerWithConfiguredThreshold() throws {
        var custom = configuration()
        custom.lateTimerThreshold = .milliseconds(50)
        var router = try router(custom)
        _ = router.start(now: at(0))
        let deadline = try #require(router.nextDeadline)
        let actions = router.timerFired(now: deadline + .milliseconds(51))
        let report = VirtualRouter.LateTimer(
            kind: .masterDown,
            lateness: .milliseconds(51),
            threshold: .milliseconds(50)
        )
        #expect(actions.first == .timerFiredLate(report))
        #expect(router.state == .master)
    }

    @Test func announcesInBurstsThenRefreshesPeriodically() throws {
        var router = try router(configuration(priority: 255))
        let start = router.start(now: at(0))
        #expect(start.contains(.announceAddresses([virtualAddress], repetitions: 5)))
        #expect(start.last == .scheduleTimer(at: at(1_000)))
        var announcements: [(MonotonicInstant, Int)] = []
        var now = at(0)
        while now < at(130_000) {
            now = try #require(router.nextDeadline)
            for action in router.timerFired(now: now) {
                if case .announceAddresses(_, let repetitions) = action { announcements.append((now, repetitions)) }
            }
        }
        #expect(announcements.map(\.0) == [at(5_000), at(65_000), at(125_000)])
        #expect(announcements.map(\.1) == [5, 1, 1])
        #expect(router.counters.advertisementsSent == 131)
    }

    @Test func announcementScheduleIsConfigurable() throws {
        let single = AnnouncementSchedule(burstCount: 3, repeatDelay: nil, refreshInterval: nil)
        var router = try router(configuration(priority: 255, announcements: single))
        #expect(router.start(now: at(0)).contains(.announceAddresses([virtualAddress], repetitions: 3)))
        for second in 1...100 {
            let actions = router.timerFired(now: at(second * 1_000))
            #expect(!actions.contains { if case .announceAddresses = $0 { true } else { false } })
        }
    }
}
