import PorticoVIP
import Testing

@Suite("VRRPv3 state machine: flapping and safety invariants")
struct VirtualRouterSafetyTests {
    /// Steps a master down (higher peer) and back up (timeout) once; two ownership changes.
    private func flap(_ router: inout VirtualRouter, at milliseconds: Int) -> [Action] {
        var actions = router.receivedAdvertisement(advert(priority: 200), from: higherPeer, now: at(milliseconds))
        actions += router.timerFired(now: router.nextDeadline!)
        return actions
    }

    private func flapReports(_ actions: [Action]) -> [VirtualRouter.FlapReport] {
        actions.compactMap {
            if case .flapping(let report) = $0 { return report }
            return nil
        }
    }

    @Test func reportsFlappingOnceWhenThresholdIsCrossed() throws {
        let detection = FlapDetection(maximumChanges: 4, window: .seconds(60))
        var router = try masterRouter(configuration(flapDetection: detection))
        var reports: [VirtualRouter.FlapReport] = []
        // Changes at ~5 s, ~8.6 s, ~10 s, ~13.6 s: four, not flapping yet.
        reports += flapReports(flap(&router, at: 5_000))
        reports += flapReports(flap(&router, at: 10_000))
        #expect(reports.isEmpty)
        #expect(!router.isFlapping)
        // The fifth change within the minute is reported, once.
        reports += flapReports(router.receivedAdvertisement(advert(priority: 200), from: higherPeer, now: at(15_000)))
        #expect(reports.count == 1)
        #expect(reports.first?.changes == 5)
        #expect(reports.first?.lastChange.reason == .higherPriorityPeer(200))
        #expect(router.isFlapping)
        reports += flapReports(router.timerFired(now: router.nextDeadline!))
        #expect(reports.count == 1)
        #expect(router.counters.flapReports == 1)
        #expect(router.counters.ownershipChanges == 6)
    }

    @Test func reportsAgainOncePerWindowWhileFlappingPersists() throws {
        let detection = FlapDetection(maximumChanges: 2, window: .seconds(30))
        var router = try masterRouter(configuration(flapDetection: detection))
        var reportTimes: [MonotonicInstant] = []
        for second in stride(from: 5, to: 95, by: 5) {
            for report in flapReports(flap(&router, at: second * 1_000)) { reportTimes.append(report.lastChange.at) }
        }
        #expect(reportTimes.count == 3)
        #expect(reportTimes.first == at(10_000))
    }

    @Test func slowChangesAreNotFlapping() throws {
        let detection = FlapDetection(maximumChanges: 2, window: .seconds(10))
        var router = try masterRouter(configuration(flapDetection: detection))
        for second in stride(from: 20, to: 300, by: 20) {
            #expect(flapReports(flap(&router, at: second * 1_000)).isEmpty)
        }
        #expect(!router.isFlapping)
    }

    @Test func backupsDetectFlappingBetweenPeers() throws {
        var router = try router(configuration(flapDetection: FlapDetection(maximumChanges: 3, window: .seconds(60))))
        _ = router.start(now: at(0))
        var reports: [VirtualRouter.FlapReport] = []
        for step in 0..<6 {
            let peer = step % 2 == 0 ? higherPeer : VRRPAddress(literal: "10.0.0.4")
            reports += flapReports(
                router.receivedAdvertisement(advert(priority: 200), from: peer, now: at(step * 1_000))
            )
        }
        #expect(reports.count == 1)
        #expect(reports.first?.changes == 4)
        #expect(router.state == .backup)
    }

    /// Random events: addresses are bound exactly while in Master, removal is the first action
    /// whenever Master is left, and the timer is always armed for the next deadline.
    @Test func addressesAreBoundOnlyWhileMaster() throws {
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<50 {
            var router = try router(configuration(priority: UInt8.random(in: 1...255, using: &generator)))
            var bound = false
            var armed: MonotonicInstant?
            var now = at(0)
            for step in 0..<300 {
                now = now + .milliseconds(Int.random(in: 0...1_500, using: &generator))
                let wasMaster = router.state == .master
                let actions: [Action]
                switch step == 0 ? 0 : Int.random(in: 0...9, using: &generator) {
                case 0: actions = router.start(now: now)
                case 1: actions = router.shutdown(now: now)
                case 2...5:
                    let peer = [lowerPeer, higherPeer][Int.random(in: 0...1, using: &generator)]
                    let priority = UInt8.random(in: 0...255, using: &generator)
                    actions = router.receivedAdvertisement(advert(priority: priority), from: peer, now: now)
                default:
                    now = max(now, armed ?? now)
                    actions = router.timerFired(now: now)
                    armed = nil
                }
                if wasMaster && router.state != .master {
                    #expect(actions.first == .removeAddresses([virtualAddress]))
                }
                for action in actions {
                    switch action {
                    case .addAddresses: bound = true
                    case .removeAddresses: bound = false
                    case .scheduleTimer(let deadline): armed = deadline
                    case .cancelTimer: armed = nil
                    default: break
                    }
                }
                #expect(bound == (router.state == .master))
                #expect(armed == router.nextDeadline)
                #expect((router.owner == .local) == (router.state == .master))
            }
        }
    }
}
