import PorticoVIP
import Testing

/// Every transition of RFC 5798 §6.4.1-6.4.3, plus Portico's safety rules.
@Suite("VRRPv3 state machine: RFC 5798 transitions")
struct VirtualRouterTransitionTests {
    // MARK: §6.4.1 Initialize

    @Test func addressOwnerStartsAsMaster() throws {
        var router = try router(configuration(priority: 255))
        let actions = router.start(now: at(0))
        let change = VirtualRouter.OwnershipChange(
            virtualRouterID: 42,
            previousOwner: nil,
            newOwner: .local,
            reason: .startedAsAddressOwner,
            at: at(0)
        )
        #expect(
            actions == [
                .addAddresses([virtualAddress], acceptTraffic: true),
                .sendAdvertisement(advert(priority: 255)),
                .announceAddresses([virtualAddress], repetitions: 5),
                .ownershipChanged(change),
                .scheduleTimer(at: at(1_000)),
            ]
        )
        #expect(router.state == .master)
        #expect(router.owner == .local)
    }

    @Test func otherNodesStartAsBackupAfterRemovingLeftovers() throws {
        var router = try router()
        let actions = router.start(now: at(0))
        #expect(actions == [.removeAddresses([virtualAddress]), .scheduleTimer(at: at(0) + router.masterDownInterval)])
        #expect(router.state == .backup)
        #expect(router.start(now: at(1)) == [])
    }

    @Test func initializeIgnoresEverythingButStart() throws {
        var router = try router()
        #expect(router.receivedAdvertisement(advert(priority: 200), from: higherPeer, now: at(0)) == [])
        #expect(router.timerFired(now: at(10_000)) == [])
        #expect(router.shutdown(now: at(0)) == [])
        #expect(router.state == .initialize)
    }

    // MARK: §6.4.2 Backup

    @Test func backupShutdownReturnsToInitialize() throws {
        var router = try router()
        _ = router.start(now: at(0))
        #expect(router.shutdown(now: at(10)) == [.cancelTimer])
        #expect(router.state == .initialize)
    }

    @Test func backupBecomesMasterWhenMasterDownTimerFires() throws {
        var router = try router()
        _ = router.start(now: at(0))
        let deadline = at(0) + router.masterDownInterval
        let actions = router.timerFired(now: deadline)
        #expect(actions.first == .addAddresses([virtualAddress], acceptTraffic: true))
        #expect(actions[1] == .sendAdvertisement(advert(priority: 100)))
        #expect(actions[2] == .announceAddresses([virtualAddress], repetitions: 5))
        #expect(changes(actions).map(\.reason) == [.peerTimeout])
        #expect(actions.last == .scheduleTimer(at: deadline + .seconds(1)))
        #expect(router.state == .master)
        #expect(router.counters.becameMaster == 1)
    }

    @Test func backupAcceptsHigherOrEqualPriorityAndLearnsItsInterval() throws {
        var router = try router()
        _ = router.start(now: at(0))
        let actions = router.receivedAdvertisement(
            advert(priority: 100, centiseconds: 50),
            from: higherPeer,
            now: at(1_000)
        )
        #expect(router.masterAdvertisementInterval == .milliseconds(500))
        // 3 * 0.5 s + (156 * 0.5 s) / 256
        #expect(router.masterDownInterval == .microseconds(1_804_687.5))
        #expect(actions.last == .scheduleTimer(at: at(1_000) + router.masterDownInterval))
        #expect(changes(actions).map(\.newOwner) == [.peer(higherPeer)])
        // Adverts keep it in Backup indefinitely.
        for second in 2...30 {
            _ = router.receivedAdvertisement(
                advert(priority: 150, centiseconds: 50),
                from: higherPeer,
                now: at(second * 1_000)
            )
            _ = router.timerFired(now: at(second * 1_000))
        }
        #expect(router.state == .backup)
        #expect(router.counters.becameMaster == 0)
    }

    @Test func backupWaitsOnlySkewTimeAfterResignation() throws {
        var router = try router()
        _ = router.start(now: at(0))
        _ = router.receivedAdvertisement(advert(priority: 150), from: higherPeer, now: at(1_000))
        let actions = router.receivedAdvertisement(advert(priority: 0), from: higherPeer, now: at(2_000))
        let takeover = at(2_000) + .microseconds(609_375)
        #expect(actions == [.scheduleTimer(at: takeover)])
        let fired = router.timerFired(now: takeover)
        #expect(router.state == .master)
        #expect(changes(fired).first?.reason == .peerResigned)
        #expect(changes(fired).first?.previousOwner == .peer(higherPeer))
        #expect(router.counters.resignationsReceived == 1)
    }

    @Test func backupPreemptsLowerPriorityMaster() throws {
        var router = try router()
        _ = router.start(now: at(0))
        let deadline = at(0) + router.masterDownInterval
        for millisecond in stride(from: 500, to: 3_600, by: 1_000) {
            let actions = router.receivedAdvertisement(advert(priority: 50), from: lowerPeer, now: at(millisecond))
            #expect(!actions.contains { if case .scheduleTimer = $0 { true } else { false } })
        }
        let actions = router.timerFired(now: deadline)
        #expect(router.state == .master)
        let change = try #require(changes(actions).first)
        #expect(change.reason == .preemptedLowerPriority)
        #expect(change.previousOwner == .peer(lowerPeer))
    }

    @Test func backupWithoutPreemptionFollowsLowerPriorityMaster() throws {
        var router = try router(configuration(preempt: false))
        _ = router.start(now: at(0))
        for millisecond in stride(from: 500, to: 60_000, by: 1_000) {
            _ = router.receivedAdvertisement(advert(priority: 50), from: lowerPeer, now: at(millisecond))
            _ = router.timerFired(now: at(millisecond))
        }
        #expect(router.state == .backup)
        #expect(router.owner == .peer(lowerPeer))
    }

    @Test func preemptDelayPostponesPreemption() throws {
        var router = try router(configuration(preemptDelay: .seconds(10)))
        _ = router.start(now: at(0))
        var becameMasterAt: MonotonicInstant?
        var millisecond = 2_000
        while becameMasterAt == nil && millisecond < 30_000 {
            if let deadline = router.nextDeadline, deadline <= at(millisecond) {
                _ = router.timerFired(now: deadline)
                if router.state == .master { becameMasterAt = deadline }
            }
            _ = router.receivedAdvertisement(advert(priority: 50), from: lowerPeer, now: at(millisecond))
            millisecond += 1_000
        }
        // The first lower-priority advert arrived at 2 s: preemption exactly 10 s later.
        #expect(becameMasterAt == at(12_000))
        #expect(router.counters.becameMaster == 1)
    }

    @Test func preemptDelayRestartsAfterHigherPriorityMaster() throws {
        var router = try router(configuration(preemptDelay: .seconds(10)))
        _ = router.start(now: at(0))
        _ = router.receivedAdvertisement(advert(priority: 50), from: lowerPeer, now: at(1_000))
        _ = router.receivedAdvertisement(advert(priority: 200), from: higherPeer, now: at(2_000))
        _ = router.receivedAdvertisement(advert(priority: 50), from: lowerPeer, now: at(3_000))
        #expect(router.nextDeadline == at(3_000) + router.masterDownInterval)
    }

    @Test func backupObservesNewMasters() throws {
        var router = try router()
        _ = router.start(now: at(0))
        let first = router.receivedAdvertisement(advert(priority: 150), from: lowerPeer, now: at(500))
        #expect(changes(first).map(\.previousOwner) == [nil])
        let second = router.receivedAdvertisement(advert(priority: 200), from: higherPeer, now: at(900))
        let change = try #require(changes(second).first)
        #expect(change.previousOwner == .peer(lowerPeer))
        #expect(change.newOwner == .peer(higherPeer))
        #expect(change.reason == .peerAdvertised)
        #expect(router.counters.ownershipChanges == 1)
    }

    @Test func reportsPeerAdvertisingOtherAddressesOnce() throws {
        var router = try router()
        _ = router.start(now: at(0))
        let other = [VRRPAddress(literal: "10.0.0.101")]
        let first = router.receivedAdvertisement(
            advert(priority: 150, addresses: other),
            from: higherPeer,
            now: at(100)
        )
        #expect(first.contains(.peerAddressesDiffer(peer: higherPeer, advertised: other)))
        let second = router.receivedAdvertisement(
            advert(priority: 150, addresses: other),
            from: higherPeer,
            now: at(1_100)
        )
        #expect(!second.contains(.peerAddressesDiffer(peer: higherPeer, advertised: other)))
    }

    // MARK: §6.4.3 Master

    @Test func masterShutdownRemovesAddressesBeforeResigning() throws {
        var router = try masterRouter()
        let actions = router.shutdown(now: at(5_000))
        #expect(actions.first == .removeAddresses([virtualAddress]))
        #expect(actions[1] == .sendAdvertisement(advert(priority: 0)))
        #expect(changes(actions).map(\.reason) == [.shutdown])
        #expect(changes(actions).map(\.newOwner) == [nil])
        #expect(actions.last == .cancelTimer)
        #expect(router.state == .initialize)
        #expect(router.owner == nil)
    }

    @Test func masterStepsDownForHigherPriority() throws {
        var router = try masterRouter()
        let actions = router.receivedAdvertisement(
            advert(priority: 101, centiseconds: 20),
            from: lowerPeer,
            now: at(5_000)
        )
        #expect(actions.first == .removeAddresses([virtualAddress]))
        #expect(router.state == .backup)
        #expect(router.masterAdvertisementInterval == .milliseconds(200))
        #expect(actions.last == .scheduleTimer(at: at(5_000) + router.masterDownInterval))
        let change = try #require(changes(actions).first)
        #expect(change.reason == .higherPriorityPeer(101))
        #expect(change.previousOwner == .local)
        #expect(change.newOwner == .peer(lowerPeer))
        // Addresses first, then one last advertisement so that the winner re-announces.
        #expect(actions[1] == .sendAdvertisement(advert(priority: 100)))
    }

    @Test func masterStepsDownForEqualPriorityWithHigherAddress() throws {
        var router = try masterRouter()
        let actions = router.receivedAdvertisement(advert(priority: 100), from: higherPeer, now: at(5_000))
        #expect(actions.first == .removeAddresses([virtualAddress]))
        #expect(changes(actions).map(\.reason) == [.tieBrokenByHigherAddress])
        #expect(router.state == .backup)
    }

    @Test func masterKeepsAddressAgainstEqualPriorityWithLowerAddress() throws {
        var router = try masterRouter()
        let actions = router.receivedAdvertisement(advert(priority: 100), from: lowerPeer, now: at(5_000))
        #expect(router.state == .master)
        #expect(actions.first == .sendAdvertisement(advert(priority: 100)))
        #expect(!actions.contains(.removeAddresses([virtualAddress])))
    }

    @Test func masterReannouncesAgainstLowerPriorityMaster() throws {
        var router = try masterRouter()
        let now = at(0) + router.masterDownInterval + .seconds(2)
        let first = router.receivedAdvertisement(advert(priority: 50), from: lowerPeer, now: now)
        #expect(
            first == [
                .sendAdvertisement(advert(priority: 100)),
                .announceAddresses([virtualAddress], repetitions: 1),
                .scheduleTimer(at: now + .seconds(1)),
            ]
        )
        // A second conflict within a second re-advertises without another announcement.
        let second = router.receivedAdvertisement(advert(priority: 50), from: lowerPeer, now: now + .milliseconds(300))
        #expect(second == [.sendAdvertisement(advert(priority: 100)), .scheduleTimer(at: now + .milliseconds(1_300))])
        // Once neighbours' ARP lock time has passed, a full burst points them here again.
        _ = router.timerFired(now: now + .milliseconds(1_300))
        let burst = router.timerFired(now: now + VirtualRouter.conflictRepeatDelay)
        #expect(burst.contains(.announceAddresses([virtualAddress], repetitions: 5)))
    }

    @Test func masterAnswersResignationWithAdvertisement() throws {
        var router = try masterRouter()
        let actions = router.receivedAdvertisement(advert(priority: 0), from: higherPeer, now: at(5_000))
        #expect(actions == [.sendAdvertisement(advert(priority: 100)), .scheduleTimer(at: at(6_000))])
        #expect(router.state == .master)
    }

    @Test func ignoresForeignAndOwnAdvertisements() throws {
        var router = try masterRouter()
        var otherRouter = advert(priority: 200)
        otherRouter.virtualRouterID = 43
        #expect(router.receivedAdvertisement(otherRouter, from: higherPeer, now: at(5_000)) == [])
        #expect(router.receivedAdvertisement(advert(priority: 200), from: localAddress, now: at(5_000)) == [])
        let ipv6Peer = VRRPAddress(literal: "fe80::9")
        #expect(router.receivedAdvertisement(advert(priority: 200), from: ipv6Peer, now: at(5_000)) == [])
        #expect(router.state == .master)
        #expect(router.counters.advertisementsIgnored == 3)
    }

    /// Initialize -> Backup -> Master -> Backup -> Master -> Initialize, as in the RFC's diagram.
    @Test func walksTheWholeStateDiagram() throws {
        var router = try router()
        _ = router.start(now: at(0))
        #expect(router.state == .backup)
        _ = router.timerFired(now: try #require(router.nextDeadline))
        #expect(router.state == .master)
        _ = router.receivedAdvertisement(advert(priority: 200), from: higherPeer, now: at(10_000))
        #expect(router.state == .backup)
        _ = router.receivedAdvertisement(advert(priority: 0), from: higherPeer, now: at(11_000))
        _ = router.timerFired(now: try #require(router.nextDeadline))
        #expect(router.state == .master)
        _ = router.shutdown(now: at(12_000))
        #expect(router.state == .initialize)
        #expect(router.counters.becameMaster == 2)
        #expect(router.counters.becameBackup == 2)
    }
}
