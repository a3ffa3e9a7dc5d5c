/// Runs the virtual routers of one family on one interface: feeds them packets and timer
/// expiries from one thread and performs their actions.
///
/// Not thread-safe: confine it to one dedicated thread (`VirtualRouterThread` on Linux), off the
/// data-plane event loops, so that data-plane load cannot starve advertisements and timers.
/// Each step first drains every pending packet, then fires due timers, so that after a stall
/// the master's queued advertisements are seen before a master-down timer can fire.
public final class VirtualRouterDriver {
    /// The routers, by VRID.
    public private(set) var routers: [UInt8: VirtualRouter] = [:]
    private let transport: any AdvertisementTransport
    private let addressing: any InterfaceAddressing
    private let announcer: any NeighbourAnnouncing
    private let clock: any MonotonicClock
    private let destinations: [VRRPAddress]
    private let report: (VirtualRouterEvent) -> Void

    /// A driver for `routers` (distinct VRIDs, one family).
    ///
    /// - Parameters:
    ///   - destinations: where advertisements go: the family's multicast group, or the unicast
    ///     peers on networks without multicast.
    ///   - report: receives everything worth a log line or a metric.
    public init(
        routers: [VirtualRouter],
        transport: any AdvertisementTransport,
        addressing: any InterfaceAddressing,
        announcer: any NeighbourAnnouncing,
        clock: any MonotonicClock,
        destinations: [VRRPAddress],
        report: @escaping (VirtualRouterEvent) -> Void
    ) {
        for router in routers { self.routers[router.configuration.virtualRouterID] = router }
        self.transport = transport
        self.addressing = addressing
        self.announcer = announcer
        self.clock = clock
        self.destinations = destinations
        self.report = report
    }

    /// The earliest deadline of any router.
    public var nextDeadline: MonotonicInstant? { routers.values.compactMap(\.nextDeadline).min() }

    /// Starts every router (removing leftover addresses first).
    public func start() {
        let now = clock.now()
        for id in routers.keys.sorted() { apply(id) { $0.start(now: now) } }
    }

    /// Shuts every router down: masters remove their addresses and resign.
    public func shutdown() {
        let now = clock.now()
        for id in routers.keys.sorted() { apply(id) { $0.shutdown(now: now) } }
    }

    /// Replaces the set of routers without disturbing unchanged ones: a router whose VRID is
    /// gone or whose configuration changed shuts down (addresses removed, then resignation);
    /// new and changed ones start (leftover addresses removed, then election).
    public func reconfigure(_ newRouters: [VirtualRouter]) {
        let now = clock.now()
        var wanted: [UInt8: VirtualRouter] = [:]
        for router in newRouters { wanted[router.configuration.virtualRouterID] = router }
        for id in routers.keys.sorted() where wanted[id]?.configuration != routers[id]?.configuration {
            apply(id) { $0.shutdown(now: now) }
            routers[id] = nil
        }
        for id in wanted.keys.sorted() where routers[id] == nil {
            routers[id] = wanted[id]
            apply(id) { $0.start(now: now) }
        }
    }

    /// Waits for a packet until the next deadline (at most `maximumWait`), drains every pending
    /// packet, then fires due timers.
    public func step(maximumWait: Duration) throws {
        var wait = maximumWait
        if let deadline = nextDeadline { wait = min(wait, max(.zero, deadline - clock.now())) }
        var packet = try transport.receive(timeout: wait)
        while let received = packet {
            handle(received)
            packet = try transport.receive(timeout: .zero)
        }
        let now = clock.now()
        for id in routers.keys.sorted() {
            if let deadline = routers[id]?.nextDeadline, deadline <= now { apply(id) { $0.timerFired(now: now) } }
        }
    }

    private func handle(_ packet: ReceivedPacket) {
        let advertisement: Advertisement
        do {
            advertisement = try Advertisement.decode(
                packet.payload,
                source: packet.source,
                destination: packet.destination,
                hopLimit: packet.hopLimit
            )
        } catch {
            report(.rejected(source: packet.source, error))
            return
        }
        let id = advertisement.virtualRouterID
        guard routers[id] != nil else {
            report(.unknownVirtualRouter(id, source: packet.source))
            return
        }
        let now = clock.now()
        apply(id) { $0.receivedAdvertisement(advertisement, from: packet.source, now: now) }
    }

    private func apply(_ id: UInt8, _ event: (inout VirtualRouter) -> [VirtualRouter.Action]) {
        guard var router = routers[id] else { return }
        let actions = event(&router)
        routers[id] = router
        for action in actions { perform(action, of: router) }
    }

    private func perform(_ action: VirtualRouter.Action, of router: VirtualRouter) {
        let id = router.configuration.virtualRouterID
        do {
            switch action {
            case .sendAdvertisement(let advertisement):
                let source = router.configuration.primaryAddress
                for destination in destinations {
                    let packet = try advertisement.encoded(source: source, destination: destination)
                    try transport.send(packet, from: source, to: destination)
                }
            case .addAddresses(let addresses, _):
                try addressing.add(addresses)
            case .removeAddresses(let addresses):
                try addressing.remove(addresses)
            case .announceAddresses(let addresses, let repetitions):
                for _ in 0..<repetitions {
                    for address in addresses { try announcer.announce(address) }
                }
            case .scheduleTimer, .cancelTimer:
                break  // the driver reads `nextDeadline` directly
            case .ownershipChanged, .timerFiredLate, .flapping, .peerAddressesDiffer:
                report(.report(virtualRouterID: id, action))
            }
        } catch {
            report(.failed(virtualRouterID: id, action, error))
        }
    }
}
