import PorticoVIP
import Testing

final class FakeClock: MonotonicClock {
    var current = at(0)
    func now() -> MonotonicInstant { current }
}

/// Records every side effect in one ordered log.
final class FakeShell: AdvertisementTransport, InterfaceAddressing, NeighbourAnnouncing {
    var log: [String] = []
    var inbox: [ReceivedPacket] = []
    var sent: [[UInt8]] = []
    var waits: [Duration] = []

    func send(_ packet: [UInt8], from source: VRRPAddress, to destination: VRRPAddress) throws {
        sent.append(packet)
        log.append("send \(packet[2]) \(source)->\(destination)")
    }

    func receive(timeout: Duration) throws -> ReceivedPacket? {
        waits.append(timeout)
        return inbox.isEmpty ? nil : inbox.removeFirst()
    }

    func add(_ addresses: [VRRPAddress]) throws { log.append("add \(addresses)") }
    func remove(_ addresses: [VRRPAddress]) throws { log.append("remove \(addresses)") }
    func announce(_ address: VRRPAddress) throws { log.append("announce \(address)") }
}

@Suite("Driver: the shell around the state machine, with fakes")
struct VirtualRouterDriverTests {
    let group = VRRPAddress.Family.ipv4.multicastGroup

    func makeDriver(
        priority: UInt8 = 100,
        shell: FakeShell,
        clock: FakeClock,
        events: @escaping (VirtualRouterEvent) -> Void = { _ in }
    ) throws -> VirtualRouterDriver {
        VirtualRouterDriver(
            routers: [try router(configuration(priority: priority))],
            transport: shell,
            addressing: shell,
            announcer: shell,
            clock: clock,
            destinations: [group],
            report: events
        )
    }

    func packet(priority: UInt8, from source: VRRPAddress, hopLimit: UInt8 = 255) throws -> ReceivedPacket {
        let bytes = try advert(priority: priority).encoded(source: source, destination: group)
        return ReceivedPacket(payload: bytes, source: source, destination: group, hopLimit: hopLimit)
    }

    @Test func ownerStartsMasterAndAdvertisesOnSchedule() throws {
        let shell = FakeShell()
        let clock = FakeClock()
        let driver = try makeDriver(priority: 255, shell: shell, clock: clock)
        driver.start()
        #expect(shell.log.first == "add [10.0.0.100]")
        #expect(shell.log[1] == "send 255 10.0.0.2->224.0.0.18")
        #expect(shell.log.filter { $0.hasPrefix("announce") }.count == 5)
        try driver.step(maximumWait: .seconds(5))
        #expect(shell.waits == [.seconds(1)])  // waited exactly until the advertisement timer
        clock.current = at(1_000)
        try driver.step(maximumWait: .seconds(5))
        #expect(shell.sent.count == 2)
        let decoded = try Advertisement.decode(shell.sent[1], source: localAddress, destination: group, hopLimit: 255)
        #expect(decoded == advert(priority: 255))
    }

    @Test func drainsQueuedAdvertisementsBeforeFiringTimers() throws {
        let shell = FakeShell()
        let clock = FakeClock()
        let driver = try makeDriver(shell: shell, clock: clock)
        driver.start()
        #expect(shell.log == ["remove [10.0.0.100]"])
        // The thread was starved past the master-down deadline while the master kept advertising.
        clock.current = at(10_000)
        shell.inbox = [try packet(priority: 200, from: higherPeer), try packet(priority: 200, from: higherPeer)]
        try driver.step(maximumWait: .seconds(1))
        #expect(driver.routers[42]?.state == .backup)
        #expect(!shell.log.contains("add [10.0.0.100]"))
    }

    @Test func reportsRejectedPacketsAndUnknownRouters() throws {
        let shell = FakeShell()
        let clock = FakeClock()
        var events: [VirtualRouterEvent] = []
        let driver = try makeDriver(shell: shell, clock: clock) { events.append($0) }
        driver.start()
        var foreign = try packet(priority: 200, from: higherPeer)
        foreign.payload = try Advertisement(
            virtualRouterID: 9,
            priority: 200,
            maximumAdvertisementIntervalCentiseconds: 100,
            addresses: [virtualAddress]
        ).encoded(source: higherPeer, destination: group)
        shell.inbox = [try packet(priority: 200, from: higherPeer, hopLimit: 64), foreign]
        try driver.step(maximumWait: .zero)
        #expect(events.count == 2)
        if case .rejected(_, let error) = events.first { #expect(error == .hopLimitNot255(64)) } else { Issue.record() }
        if case .unknownVirtualRouter(let id, _) = events.last { #expect(id == 9) } else { Issue.record() }
    }

    @Test func shutdownRemovesAddressesBeforeResigning() throws {
        let shell = FakeShell()
        let clock = FakeClock()
        var events: [VirtualRouterEvent] = []
        let driver = try makeDriver(priority: 255, shell: shell, clock: clock) { events.append($0) }
        driver.start()
        shell.log = []
        driver.shutdown()
        #expect(shell.log == ["remove [10.0.0.100]", "send 0 10.0.0.2->224.0.0.18"])
        #expect(events.count == 2)  // two ownership changes: start and shutdown
    }

    @Test func reconfigureKeepsUnchangedRoutersAndReplacesChangedOnes() throws {
        let shell = FakeShell()
        let clock = FakeClock()
        let driver = try makeDriver(priority: 255, shell: shell, clock: clock)
        driver.start()
        shell.log = []
        // Same configuration: nothing happens to the running master.
        driver.reconfigure([try router(configuration(priority: 255))])
        #expect(shell.log.isEmpty)
        #expect(driver.routers[42]?.state == .master)
        // A new VRID starts (leftover address removed first); the unchanged one keeps running.
        var other = configuration(priority: 100)
        other.virtualRouterID = 7
        other.virtualAddresses = [VRRPAddress(literal: "10.0.0.101")]
        driver.reconfigure([try router(configuration(priority: 255)), try router(other)])
        #expect(shell.log == ["remove [10.0.0.101]"])
        #expect(driver.routers[42]?.state == .master)
        #expect(driver.routers[7]?.state == .backup)
        // A changed router resigns (address removed first) and starts again with the new settings.
        shell.log = []
        driver.reconfigure([try router(configuration(priority: 100)), try router(other)])
        #expect(Array(shell.log.prefix(2)) == ["remove [10.0.0.100]", "send 0 10.0.0.2->224.0.0.18"])
        #expect(driver.routers[42]?.state == .backup)
        #expect(driver.routers[42]?.configuration.priority == 100)
        // A removed router that was backup just stops.
        shell.log = []
        driver.reconfigure([try router(other)])
        #expect(driver.routers[42] == nil)
        #expect(!shell.log.contains { $0.hasPrefix("add") || $0.hasPrefix("send") })
    }
}
