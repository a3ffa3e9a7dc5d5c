import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import PorticoPlan
import PorticoVIP

#if canImport(Glibc)
import Glibc
#endif

/// Runs this node's virtual routers: one `VirtualRouterThread` per interface and family, fed
/// by the plan's `virtualIPs`, reconfigured on reload, stopped (resigning) on shutdown.
/// Logs and counts every ownership change with its reason, late timers and flapping.
final class VirtualIPService: Sendable {
    private struct Key: Hashable {
        var interface: String
        var family: VRRPAddress.Family
    }

    private struct State {
        var threads: [Key: VirtualRouterThread] = [:]
        var peers: [Key: [VRRPAddress]] = [:]
        var warnedNotRoot = false
        var stopped = false
    }

    private let node: String
    private let peers: [VRRPAddress]
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(node: String, peers: [String], logger: Logger) {
        self.node = node
        self.peers = peers.compactMap { VRRPAddress($0) }
        self.logger = logger
    }

    /// Brings the running routers in line with `groups`.
    func apply(_ groups: [VirtualIPGroup]) {
        #if os(Linux)
        state.withLockedValue { state in
            guard !state.stopped else { return }
            if !groups.isEmpty && !Self.hasNetworkCapabilities() {
                if !state.warnedNotRoot {
                    logger.warning(
                        "virtual IPs not started: VRRP needs CAP_NET_RAW and CAP_NET_ADMIN (root); serving without them",
                        metadata: ["groups": "\(groups.count)", "uid": "\(geteuid())"]
                    )
                    state.warnedNotRoot = true
                }
                return
            }
            var wanted: [Key: [VirtualRouter]] = [:]
            for group in groups {
                guard let router = makeRouter(group) else { continue }
                let key = Key(interface: group.interface, family: router.configuration.primaryAddress.family)
                wanted[key, default: []].append(router)
            }
            for (key, thread) in state.threads where wanted[key] == nil {
                thread.stop()
                state.threads[key] = nil
                logger.info("virtual routers stopped", metadata: ["interface": "\(key.interface)"])
            }
            for (key, routers) in wanted.sorted(by: { $0.key.interface < $1.key.interface }) {
                if let thread = state.threads[key] {
                    thread.reconfigure(routers)
                    continue
                }
                do {
                    let thread = try VirtualRouterThread(
                        interface: key.interface,
                        family: key.family,
                        routers: routers,
                        peers: peers,
                        report: { [self] event in report(event, interface: key.interface) },
                        failure: { [logger] error in
                            logger.error("VRRP loop step failed", metadata: ["error": "\(error)"])
                        },
                        statusChanged: { [self] statuses in record(statuses, interface: key.interface) }
                    )
                    thread.start()
                    state.threads[key] = thread
                    logger.info(
                        "virtual routers started",
                        metadata: [
                            "interface": "\(key.interface)",
                            "vrids": "\(routers.map(\.configuration.virtualRouterID))",
                            "peers": "\(peers.isEmpty ? "multicast" : "\(peers)")",
                        ]
                    )
                } catch {
                    logger.error(
                        "virtual IPs not started on this interface",
                        metadata: ["interface": "\(key.interface)", "error": "\(error)"]
                    )
                }
            }
        }
        #else
        if !groups.isEmpty { logger.warning("virtual IPs need Linux; serving without them") }
        #endif
    }

    /// Masters remove their addresses and resign (priority 0) so that a backup takes over after
    /// its skew time; then every thread ends. Idempotent.
    func shutdown() {
        #if os(Linux)
        let threads = state.withLockedValue { state -> [VirtualRouterThread] in
            state.stopped = true
            defer { state.threads = [:] }
            return Array(state.threads.values)
        }
        for thread in threads { thread.stop() }
        if !threads.isEmpty { logger.info("virtual routers stopped (resigned)") }
        #endif
    }

    /// `groups` with this node's state and the owner as the running routers see them.
    func annotate(_ groups: [VirtualIPGroup]) -> [VirtualIPGroup] {
        #if os(Linux)
        var byKey: [String: VirtualRouterThread.Status] = [:]
        for thread in state.withLockedValue({ Array($0.threads.values) }) {
            for status in thread.status {
                byKey["\(thread.interface)#\(status.virtualRouterID)#\(thread.family)"] = status
            }
        }
        return groups.map { group in
            var group = group
            let family: VRRPAddress.Family = group.family == "IPv6" ? .ipv6 : .ipv4
            if let status = byKey["\(group.interface)#\(group.virtualRouterID)#\(family)"] {
                group.state = Self.name(of: status.state)
                group.owner = status.owner.map { $0 == .local ? "\(node) (this node)" : "\($0)" }
            }
            return group
        }
        #else
        return groups
        #endif
    }

    /// Whether the effective capabilities (`CapEff` in /proc/self/status) include
    /// CAP_NET_ADMIN (12) and CAP_NET_RAW (13): root, or a service granted them.
    static func hasNetworkCapabilities() -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let bits = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return geteuid() == 0 }
        let needed: UInt64 = 1 << 12 | 1 << 13
        return bits & needed == needed
    }

    // MARK: - configuration

    #if os(Linux)
    private func makeRouter(_ group: VirtualIPGroup) -> VirtualRouter? {
        let addresses = group.addresses.compactMap { VRRPAddress($0) }
        guard let family = addresses.first?.family, !group.interface.isEmpty else {
            logger.error(
                "virtual IP skipped: no interface (pass --vrrp-interface or list interfaces in the L2Advertisement)",
                metadata: ["addresses": "\(group.addresses)"]
            )
            return nil
        }
        guard
            let primary = InterfaceAddresses.primary(
                interface: group.interface,
                family: family,
                excluding: Set(addresses)
            )
        else {
            logger.error(
                "virtual IP skipped: the interface has no \(family == .ipv4 ? "IPv4" : "link-local IPv6") address to advertise from",
                metadata: ["interface": "\(group.interface)", "addresses": "\(group.addresses)"]
            )
            return nil
        }
        let configuration = VirtualRouterConfiguration(
            virtualRouterID: UInt8(clamping: group.virtualRouterID),
            priority: UInt8(clamping: group.priority),
            advertisementInterval: .milliseconds(group.advertisementIntervalMilliseconds),
            preempt: group.preempt,
            preemptDelay: .milliseconds(group.preemptDelayMilliseconds),
            primaryAddress: primary,
            virtualAddresses: addresses
        )
        do {
            return try VirtualRouter(configuration: configuration)
        } catch {
            logger.error(
                "virtual IP skipped: invalid virtual router",
                metadata: ["addresses": "\(group.addresses)", "error": "\(error)"]
            )
            return nil
        }
    }
    #endif

    // MARK: - reporting (called on the router threads)

    private func report(_ event: VirtualRouterEvent, interface: String) {
        switch event {
        case .report(let id, let action):
            switch action {
            case .ownershipChanged(let change):
                let reason = Self.label(change.reason)
                logger.notice(
                    "VIP owner changed",
                    metadata: [
                        "vrid": "\(id)", "interface": "\(interface)",
                        "from": "\(change.previousOwner.map { "\($0)" } ?? "none")",
                        "to": "\(change.newOwner.map { "\($0)" } ?? "none")",
                        "reason": "\(change.reason)",
                    ]
                )
                Counter(
                    label: "portico_vip_transitions_total",
                    dimensions: [("vrid", "\(id)"), ("reason", reason)]
                ).increment()
            case .timerFiredLate(let late):
                logger.warning(
                    "VRRP timer fired late (CPU starvation risks two masters)",
                    metadata: [
                        "vrid": "\(id)", "timer": "\(late.kind)", "lateness": "\(late.lateness)",
                        "threshold": "\(late.threshold)",
                    ]
                )
                Counter(
                    label: "portico_vip_late_timers_total",
                    dimensions: [
                        ("vrid", "\(id)"), ("timer", late.kind == .advertisement ? "advertisement" : "master_down"),
                    ]
                ).increment()
            case .flapping(let flap):
                logger.critical(
                    "VIP owner is flapping: connections to it are being reset",
                    metadata: [
                        "vrid": "\(id)", "changes": "\(flap.changes)", "window": "\(flap.window)",
                        "lastReason": "\(flap.lastChange.reason)",
                    ]
                )
                Counter(label: "portico_vip_flap_reports_total", dimensions: [("vrid", "\(id)")]).increment()
            case .peerAddressesDiffer(let peer, let advertised):
                logger.warning(
                    "VRRP master advertises other addresses than this node has for the VRID",
                    metadata: ["vrid": "\(id)", "peer": "\(peer)", "advertised": "\(advertised)"]
                )
            default:
                break
            }
        case .rejected(let source, let error):
            logger.debug("VRRP packet rejected", metadata: ["source": "\(source)", "error": "\(error)"])
            Counter(label: "portico_vip_packets_rejected_total").increment()
        case .unknownVirtualRouter(let id, let source):
            logger.trace("VRRP advertisement for another VRID", metadata: ["vrid": "\(id)", "source": "\(source)"])
        case .failed(let id, let action, let error):
            logger.error(
                "VRRP action failed",
                metadata: ["vrid": "\(id)", "action": "\(action)", "error": "\(error)"]
            )
            Counter(label: "portico_vip_action_failures_total", dimensions: [("vrid", "\(id)")]).increment()
        }
    }

    #if os(Linux)
    private func record(_ statuses: [VirtualRouterThread.Status], interface: String) {
        for status in statuses {
            for address in status.addresses {
                Gauge(
                    label: "portico_vip_state",
                    dimensions: [("address", "\(address)"), ("vrid", "\(status.virtualRouterID)")]
                ).record(Self.value(of: status.state))
            }
        }
    }
    #endif

    static func name(of state: VirtualRouter.State) -> String {
        switch state {
        case .initialize: "initialize"
        case .backup: "backup"
        case .master: "master"
        }
    }

    /// `portico_vip_state`: 0 initialize (not running), 1 backup, 2 master.
    static func value(of state: VirtualRouter.State) -> Int {
        switch state {
        case .initialize: 0
        case .backup: 1
        case .master: 2
        }
    }

    static func label(_ reason: VirtualRouter.OwnershipChangeReason) -> String {
        switch reason {
        case .startedAsAddressOwner: "startup_owner"
        case .peerTimeout: "peer_timeout"
        case .peerResigned: "peer_resigned"
        case .preemptedLowerPriority: "preempted"
        case .higherPriorityPeer: "higher_priority"
        case .tieBrokenByHigherAddress: "tie_break"
        case .peerAdvertised: "peer_advertised"
        case .shutdown: "shutdown"
        }
    }
}
