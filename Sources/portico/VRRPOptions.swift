import ArgumentParser
import Foundation
import PorticoPlan

/// The node's identity for the virtual-IP election, shared by `serve` and `plan`.
struct VRRPOptions: ParsableArguments {
    @Option(
        name: .customLong("node-label"),
        help: "A label of this node, KEY=VALUE (repeatable); matched by L2Advertisement nodeSelectors."
    )
    var nodeLabels: [String] = []

    @Option(
        name: .customLong("vrrp-interface"),
        help: "Interface the virtual IPs live on (default: the L2Advertisement's first interface)."
    )
    var interface: String?

    @Option(
        name: .customLong("vrrp-priority"),
        help: "This node's VRRP priority (1-255) for every virtual IP, instead of the derived one."
    )
    var priority: Int?

    @Option(
        name: .customLong("vrrp-nodes"),
        help: "Comma-separated names of all nodes: priorities are then ranked over them (distinct)."
    )
    var nodes: String?

    @Option(
        name: .customLong("vrrp-advert-interval"),
        help: "VRRP advertisement interval in milliseconds (multiple of 10, 10-40950)."
    )
    var advertisementInterval: Int = 1000

    @Option(name: .customLong("vrrp-vrid"), help: "ADDRESS=VRID: pin the VRID of a virtual IP (repeatable).")
    var virtualRouterIDs: [String] = []

    @Flag(
        name: .customLong("vrrp-no-preempt"),
        help: "A returning higher-priority node does not take the virtual IPs back from a working master."
    )
    var noPreempt = false

    @Option(
        name: .customLong("vrrp-preempt-delay"),
        help: "Seconds a higher-priority node waits before taking the virtual IPs back (0-3600)."
    )
    var preemptDelay: Int = 0

    @Option(
        name: .customLong("vrrp-peer"),
        help: "Unicast VRRP peer address (repeatable), for networks without multicast."
    )
    var peers: [String] = []

    func validate() throws {
        for label in nodeLabels where !label.contains("=") {
            throw ValidationError("--node-label must be KEY=VALUE, not \(label)")
        }
        if let priority, !(1...255).contains(priority) { throw ValidationError("--vrrp-priority must be 1-255") }
        guard (0...3600).contains(preemptDelay) else {
            throw ValidationError("--vrrp-preempt-delay must be 0 to 3600 seconds")
        }
        guard advertisementInterval % 10 == 0, (10...40950).contains(advertisementInterval) else {
            throw ValidationError("--vrrp-advert-interval must be a multiple of 10 from 10 to 40950 (milliseconds)")
        }
        for entry in virtualRouterIDs {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let vrid = Int(parts[1]), (1...255).contains(vrid) else {
                throw ValidationError("--vrrp-vrid must be ADDRESS=VRID with a VRID from 1 to 255, not \(entry)")
            }
        }
    }

    func node(named name: String) -> VirtualIPNode {
        var labels: [String: String] = [:]
        for label in nodeLabels {
            let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
            labels[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        var vrids: [String: UInt8] = [:]
        for entry in virtualRouterIDs {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2, let vrid = UInt8(parts[1]) { vrids[parts[0]] = vrid }
        }
        return VirtualIPNode(
            name: name,
            labels: labels,
            interface: interface,
            priority: priority.map { UInt8($0) },
            nodes: nodes?.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } ?? [],
            advertisementInterval: .milliseconds(advertisementInterval),
            virtualRouterIDs: vrids,
            preempt: !noPreempt,
            preemptDelay: .seconds(preemptDelay)
        )
    }
}
