import PorticoVIP
import Testing

/// Several virtual routers on a simulated link with a fixed one-way delay, driven through
/// their actions only: the pure core's behaviour as a group, without sockets.
struct SimulatedLink {
    struct Node {
        var router: VirtualRouter
        var timer: MonotonicInstant?
        var alive = true
        var holdsAddresses = false
    }

    struct Delivery {
        var at: MonotonicInstant
        var advertisement: Advertisement
        var source: VRRPAddress
        var target: Int
    }

    var nodes: [Node] = []
    var deliveries: [Delivery] = []
    var now = at(0)
    let delay = Duration.milliseconds(1)
    /// Every instant at which an address was added, per node.
    var takeovers: [(node: Int, at: MonotonicInstant)] = []
    /// The longest time two nodes held the address at once.
    var longestOverlap = Duration.zero
    private var overlapSince: MonotonicInstant?

    init(priorities: [UInt8], interval: Duration = .milliseconds(100), preempt: Bool = true) throws {
        for (index, priority) in priorities.enumerated() {
            let configuration = VirtualRouterConfiguration(
                virtualRouterID: 42,
                priority: priority,
                advertisementInterval: interval,
                preempt: preempt,
                primaryAddress: .ipv4(0x0A00_0001 + UInt32(index)),
                virtualAddresses: [virtualAddress]
            )
            nodes.append(Node(router: try VirtualRouter(configuration: configuration)))
        }
    }

    var holders: [Int] { nodes.indices.filter { nodes[$0].holdsAddresses } }

    mutating func start(_ index: Int) {
        nodes[index].alive = true
        let actions = nodes[index].router.start(now: now)
        perform(actions, of: index)
    }

    /// SIGTERM: a clean shutdown.
    mutating func stop(_ index: Int) {
        let actions = nodes[index].router.shutdown(now: now)
        perform(actions, of: index)
        nodes[index].alive = false
    }

    /// SIGKILL: the process vanishes; the kernel drops its addresses with it in this model
    /// (a real crash can leave them bound: `start` removes them on the next run).
    mutating func kill(_ index: Int) {
        nodes[index].alive = false
        nodes[index].timer = nil
        nodes[index].holdsAddresses = false
        let configuration = nodes[index].router.configuration
        nodes[index].router = try! VirtualRouter(configuration: configuration)
        deliveries.removeAll { $0.target == index }
    }

    /// Runs every event up to `end`.
    mutating func run(until end: MonotonicInstant) {
        while true {
            let nextTimer = nodes.indices.compactMap { index in nodes[index].timer.map { (index, $0) } }
                .min { $0.1 < $1.1 }
            let nextDelivery = deliveries.indices.min { deliveries[$0].at < deliveries[$1].at }
            let timerAt = nextTimer?.1
            let deliveryAt = nextDelivery.map { deliveries[$0].at }
            guard let next = [timerAt, deliveryAt].compactMap({ $0 }).min(), next <= end else { break }
            now = next
            if let deliveryIndex = nextDelivery, deliveryAt == next {
                let delivery = deliveries.remove(at: deliveryIndex)
                let actions = nodes[delivery.target].router.receivedAdvertisement(
                    delivery.advertisement,
                    from: delivery.source,
                    now: now
                )
                perform(actions, of: delivery.target)
            } else if let (index, _) = nextTimer {
                nodes[index].timer = nil
                perform(nodes[index].router.timerFired(now: now), of: index)
            }
        }
        now = end
    }

    private mutating func perform(_ actions: [VirtualRouter.Action], of index: Int) {
        for action in actions {
            switch action {
            case .sendAdvertisement(let advertisement):
                let source = nodes[index].router.configuration.primaryAddress
                for target in nodes.indices where target != index && nodes[target].alive {
                    deliveries.append(
                        Delivery(at: now + delay, advertisement: advertisement, source: source, target: target)
                    )
                }
            case .addAddresses:
                nodes[index].holdsAddresses = true
                takeovers.append((index, now))
            case .removeAddresses:
                nodes[index].holdsAddresses = false
            case .scheduleTimer(let deadline):
                nodes[index].timer = deadline
            case .cancelTimer:
                nodes[index].timer = nil
            default:
                break
            }
        }
        if holders.count > 1 {
            overlapSince = overlapSince ?? now
        } else if let since = overlapSince {
            longestOverlap = max(longestOverlap, now - since)
            overlapSince = nil
        }
    }
}

@Suite("Election of several nodes on a simulated link")
struct ElectionSimulationTests {
    @Test func highestPriorityWinsAndHoldsAlone() throws {
        var link = try SimulatedLink(priorities: [230, 250, 240])
        for index in 0..<3 { link.start(index) }
        link.run(until: at(5_000))
        #expect(link.holders == [1])
        #expect(link.nodes.map(\.router.state) == [.backup, .master, .backup])
        #expect(link.takeovers.count == 1)
        #expect(link.longestOverlap == .zero)
    }

    @Test func equalPrioritiesConvergeOnTheHighestAddress() throws {
        var link = try SimulatedLink(priorities: [100, 100, 100])
        for index in 0..<3 { link.start(index) }
        link.run(until: at(5_000))
        #expect(link.holders == [2])
        #expect(link.longestOverlap <= .milliseconds(1))
    }

    @Test func killedMasterIsReplacedWithinMasterDownInterval() throws {
        var link = try SimulatedLink(priorities: [250, 240, 230])
        for index in 0..<3 { link.start(index) }
        link.run(until: at(5_000))
        link.kill(0)
        link.run(until: at(6_000))
        let takeover = try #require(link.takeovers.last)
        #expect(takeover.node == 1)
        // Last advert at <= 5 s, arriving 1 ms later; 3 * 100 ms + (16 * 100 ms) / 256 after it.
        #expect(takeover.at - at(5_000) <= .microseconds(306_250 + 1_000))
        #expect(link.holders == [1])
    }

    @Test func stoppedMasterHandsOverAfterSkewOnly() throws {
        var link = try SimulatedLink(priorities: [250, 240, 230])
        for index in 0..<3 { link.start(index) }
        link.run(until: at(5_000))
        link.stop(0)
        link.run(until: at(6_000))
        let takeover = try #require(link.takeovers.last)
        #expect(takeover.node == 1)
        #expect(takeover.at - at(5_000) == .microseconds(6_250 + 1_000))  // skew of 240 + link delay
        #expect(link.holders == [1])
    }

    @Test func restoredNodePreemptsOnlyWhenConfigured() throws {
        for preempt in [true, false] {
            var link = try SimulatedLink(priorities: [250, 240], preempt: preempt)
            link.start(0)
            link.start(1)
            link.run(until: at(2_000))
            link.kill(0)
            link.run(until: at(3_000))
            link.start(0)
            link.run(until: at(5_000))
            #expect(link.holders == (preempt ? [0] : [1]))
            #expect(link.longestOverlap <= .milliseconds(1))
        }
    }

    @Test func randomKillsNeverLeaveTwoOwnersForLongerThanTheLinkDelay() throws {
        var generator = SeededGenerator(seed: 1_234)
        var link = try SimulatedLink(priorities: [200, 150, 100, 100])
        for index in 0..<4 { link.start(index) }
        var time = 0
        for _ in 0..<200 {
            time += Int.random(in: 50...2_000, using: &generator)
            link.run(until: at(time))
            let index = Int.random(in: 0..<4, using: &generator)
            switch Int.random(in: 0...2, using: &generator) {
            case 0 where link.nodes[index].alive: link.kill(index)
            case 1 where link.nodes[index].alive: link.stop(index)
            default: if !link.nodes[index].alive { link.start(index) }
            }
        }
        link.run(until: at(time + 5_000))
        #expect(link.longestOverlap <= .milliseconds(1))
        let alive = link.nodes.indices.filter { link.nodes[$0].alive }
        #expect(link.holders.count == (alive.isEmpty ? 0 : 1))
    }
}
