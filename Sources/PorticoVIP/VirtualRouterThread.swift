#if os(Linux)
import Foundation
import Glibc

/// Runs a `VirtualRouterDriver` for one interface and family on its own thread, never on a
/// data-plane event loop: a loop busy with proxying cannot delay advertisements or make a
/// backup miss the master's (the classic cause of two masters). The thread asks for
/// `SCHED_RR` when allowed so that saturated cores delay it less.
///
/// Commands (reconfigure, stop) are picked up between steps, at most `commandLatency` later.
public final class VirtualRouterThread: @unchecked Sendable {
    /// What one virtual router is doing, for `/plan` and metrics.
    public struct Status: Hashable, Sendable {
        public var virtualRouterID: UInt8
        public var state: VirtualRouter.State
        public var owner: VirtualRouter.Owner?
        public var addresses: [VRRPAddress]
        public var priority: UInt8
    }

    /// The interface.
    public let interface: String
    /// The family.
    public let family: VRRPAddress.Family
    /// How long a command may wait for the loop: a SIGTERM's resignation waits at most this
    /// long before the backups' skew time starts (a 5 ms wake-up costs next to nothing).
    public static let commandLatency: Duration = .milliseconds(5)

    private let condition = NSCondition()
    private var pending: [VirtualRouter]?
    private var stopRequested = false
    private var finished = false
    private var statuses: [UInt8: Status] = [:]
    private var thread: Thread?
    private let driver: VirtualRouterDriver
    private let failure: @Sendable (any Error) -> Void
    private let statusChanged: @Sendable ([Status]) -> Void

    /// Opens the raw VRRP socket, the netlink socket and the announcer on `interface` (needs
    /// CAP_NET_RAW and CAP_NET_ADMIN) and prepares a driver for `routers`.
    ///
    /// - Parameters:
    ///   - destinations: the multicast group (empty) or the unicast peers.
    ///   - report: the driver's events (called on the router thread).
    ///   - failure: a failed loop step (called on the router thread).
    ///   - statusChanged: the statuses whenever one changed (called on the router thread).
    public init(
        interface: String,
        family: VRRPAddress.Family,
        routers: [VirtualRouter],
        peers: [VRRPAddress],
        report: @escaping @Sendable (VirtualRouterEvent) -> Void,
        failure: @escaping @Sendable (any Error) -> Void,
        statusChanged: @escaping @Sendable ([Status]) -> Void
    ) throws {
        self.interface = interface
        self.family = family
        self.failure = failure
        self.statusChanged = statusChanged
        driver = VirtualRouterDriver(
            routers: routers,
            transport: try RawAdvertisementSocket(family: family, interface: interface),
            addressing: try NetlinkInterfaceAddressing(interface: interface),
            announcer: try PacketNeighbourAnnouncer(interface: interface),
            clock: SystemMonotonicClock(),
            destinations: peers.isEmpty ? [family.multicastGroup] : peers.filter { $0.family == family },
            report: report
        )
    }

    /// Starts the thread: leftover addresses are removed, then the routers elect.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Replaces the routers; unchanged ones are not disturbed.
    public func reconfigure(_ routers: [VirtualRouter]) {
        condition.lock()
        pending = routers
        condition.unlock()
    }

    /// Shuts the routers down (masters remove their addresses, then resign with priority 0) and
    /// waits at most `timeout` for the thread to finish. Returns whether it finished.
    @discardableResult
    public func stop(timeout: Duration = .seconds(2)) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        stopRequested = true
        let (seconds, attoseconds) = timeout.components
        let deadline = Date().addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
        while !finished {
            if thread == nil || !condition.wait(until: deadline) { return finished }
        }
        return true
    }

    /// The current status of every router, by VRID.
    public var status: [Status] {
        condition.lock()
        defer { condition.unlock() }
        return statuses.values.sorted { $0.virtualRouterID < $1.virtualRouterID }
    }

    private func run() {
        var lastFailureReport: ContinuousClock.Instant?
        Self.nameKernelThread(family == .ipv4 ? "portico-vrrp4" : "portico-vrrp6")
        Self.requestRealtimeScheduling()
        driver.start()
        publish()
        while true {
            condition.lock()
            let routers = pending
            pending = nil
            let stop = stopRequested
            condition.unlock()
            if let routers {
                driver.reconfigure(routers)
                publish()
            }
            if stop {
                driver.shutdown()
                publish()
                break
            }
            do {
                try driver.step(maximumWait: Self.commandLatency)
            } catch {
                // Reported at most once a second: a vanished interface must not flood the log.
                let now = ContinuousClock.now
                if lastFailureReport.map({ now - $0 >= .seconds(1) }) ?? true {
                    failure(error)
                    lastFailureReport = now
                }
                usleep(10_000)
            }
            publish()
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func publish() {
        var current: [UInt8: Status] = [:]
        for (id, router) in driver.routers {
            current[id] = Status(
                virtualRouterID: id,
                state: router.state,
                owner: router.owner,
                addresses: router.configuration.virtualAddresses,
                priority: router.configuration.priority
            )
        }
        condition.lock()
        let changed = current != statuses
        if changed { statuses = current }
        condition.unlock()
        if changed { statusChanged(current.values.sorted { $0.virtualRouterID < $1.virtualRouterID }) }
    }

    /// Names the calling thread for ps and chrt (at most 15 bytes). Foundation's `Thread.name`
    /// does not reach the kernel thread here, and Glibc's module lacks `pthread_setname_np`.
    private static func nameKernelThread(_ name: String) {
        let descriptor = open("/proc/thread-self/comm", O_WRONLY)
        guard descriptor >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
    }

    /// `SCHED_RR` at a low real-time priority for the calling thread, when permitted.
    private static func requestRealtimeScheduling() {
        var parameters = sched_param()
        parameters.sched_priority = 10
        _ = sched_setscheduler(0, SCHED_RR, &parameters)
    }
}

/// The addresses of an interface, for choosing the source of advertisements.
public enum InterfaceAddresses {
    /// The first address of `family` on `interface` that is not one of `excluding` (virtual
    /// addresses a crashed run may have left): for IPv6 a link-local address (RFC 5798).
    public static func primary(
        interface: String,
        family: VRRPAddress.Family,
        excluding: Set<VRRPAddress>
    ) -> VRRPAddress? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let name = entry.pointee.ifa_name, String(cString: name) == interface,
                let socketAddress = entry.pointee.ifa_addr
            else { continue }
            let address: VRRPAddress?
            switch Int32(socketAddress.pointee.sa_family) {
            case AF_INET where family == .ipv4:
                address = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    .ipv4(UInt32(bigEndian: $0.pointee.sin_addr.s_addr))
                }
            case AF_INET6 where family == .ipv6:
                address = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var storage = pointer.pointee.sin6_addr
                    return withUnsafeBytes(of: &storage) { VRRPAddress(bytes: Array($0)) }
                }
            default:
                address = nil
            }
            guard let address, !excluding.contains(address) else { continue }
            if family == .ipv6 && !address.isIPv6LinkLocal { continue }
            return address
        }
        return nil
    }
}
#endif
