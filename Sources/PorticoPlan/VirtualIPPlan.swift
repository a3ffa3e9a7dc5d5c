public import PorticoModel
public import PorticoVIP

/// This node as the virtual-IP election sees it: from `portico serve` / `portico plan` flags.
public struct VirtualIPNode: Sendable, Hashable {
    /// The node's name (`--node`): the key of its derived priorities.
    public var name: String
    /// The node's labels (`--node-label k=v`), matched by L2Advertisement `nodeSelectors`.
    public var labels: [String: String]
    /// The interface the addresses live on (`--vrrp-interface`); else the first of the
    /// L2Advertisement's `interfaces`.
    public var interface: String?
    /// This node's priority for every virtual router (`--vrrp-priority`), overriding the
    /// derived one.
    public var priority: UInt8?
    /// All nodes of the group (`--vrrp-nodes`): when known, priorities are ranked over them
    /// so that they are distinct; else each node derives its priority alone.
    public var nodes: [String]
    /// The advertisement interval (`--vrrp-advert-interval`).
    public var advertisementInterval: Duration
    /// VRID overrides by address (`--vrrp-vrid ADDRESS=VRID`); the Service annotation
    /// `portico.dev/vrrp-vrid` does the same for all of a Service's addresses.
    public var virtualRouterIDs: [String: UInt8]
    /// Whether a higher-priority backup takes the addresses back from a lower-priority master
    /// (RFC 5798's Preempt_Mode; `--vrrp-no-preempt` turns it off).
    public var preempt: Bool
    /// How long a higher-priority backup tolerates a lower-priority master before preempting
    /// (`--vrrp-preempt-delay`, keepalived's `preempt_delay`).
    public var preemptDelay: Duration

    public init(
        name: String,
        labels: [String: String] = [:],
        interface: String? = nil,
        priority: UInt8? = nil,
        nodes: [String] = [],
        advertisementInterval: Duration = .seconds(1),
        virtualRouterIDs: [String: UInt8] = [:],
        preempt: Bool = true,
        preemptDelay: Duration = .zero
    ) {
        self.name = name
        self.labels = labels
        self.interface = interface
        self.priority = priority
        self.nodes = nodes
        self.advertisementInterval = advertisementInterval
        self.virtualRouterIDs = virtualRouterIDs
        self.preempt = preempt
        self.preemptDelay = preemptDelay
    }
}

/// One virtual router this node takes part in: the addresses that move together.
public struct VirtualIPGroup: Sendable, Hashable, Codable {
    /// The VRID, 1-255, shared by every node of the group.
    public var virtualRouterID: Int
    /// `IPv4` or `IPv6`.
    public var family: String
    public var addresses: [String]
    /// The Services (`namespace/name`) using the addresses.
    public var services: [String]
    /// The interface; empty when none is known (no `--vrrp-interface`, no `interfaces`).
    public var interface: String
    /// This node's priority, 1-255.
    public var priority: Int
    public var advertisementIntervalMilliseconds: Int
    /// Preempt_Mode of the router, and its delay.
    public var preempt: Bool
    public var preemptDelayMilliseconds: Int
    /// The L2Advertisements (`namespace/name`) that announce the addresses from this node.
    public var announcedBy: [String]
    /// At run time: `initialize`, `backup` or `master` on this node (nil in `portico plan`).
    public var state: String?
    /// At run time: `this node`, `peer ADDRESS`, or nil when unknown.
    public var owner: String?

    public init(
        virtualRouterID: Int,
        family: String,
        addresses: [String],
        services: [String],
        interface: String,
        priority: Int,
        advertisementIntervalMilliseconds: Int,
        preempt: Bool = true,
        preemptDelayMilliseconds: Int = 0,
        announcedBy: [String],
        state: String? = nil,
        owner: String? = nil
    ) {
        self.virtualRouterID = virtualRouterID
        self.family = family
        self.addresses = addresses
        self.services = services
        self.interface = interface
        self.priority = priority
        self.advertisementIntervalMilliseconds = advertisementIntervalMilliseconds
        self.preempt = preempt
        self.preemptDelayMilliseconds = preemptDelayMilliseconds
        self.announcedBy = announcedBy
        self.state = state
        self.owner = owner
    }
}

/// Which allocated addresses this node announces, as virtual routers. Pure.
public enum VirtualIPPlanner {
    /// The Service annotation overriding the VRID of its addresses.
    public static let virtualRouterIDAnnotation = Annotations.vrrpVirtualRouterID
    /// The Service annotation naming the node that should hold its addresses (priority 254 there).
    public static let preferredNodeAnnotation = Annotations.vrrpPreferredNode
    /// The priority of a preferred node: above every derived priority, below an owner's 255.
    public static let preferredPriority: UInt8 = 254

    /// Adds the virtual routers of `node` to `plan` (`plan.virtualIPs`); problems with the
    /// overrides become diagnostics.
    public static func addVirtualIPs(to plan: inout Plan, manifests: Manifests, node: VirtualIPNode) {
        let (groups, problems) = groups(for: manifests, allocations: plan.allocations, node: node)
        plan.virtualIPs = groups
        plan.virtualIPNode = node.name
        plan.diagnostics += problems
    }

    /// One virtual router per allocated address announced from `node` (a shared address, used
    /// by several Services, is one router), sorted by interface, family and address.
    public static func groups(
        for manifests: Manifests,
        allocations: [Allocation],
        node: VirtualIPNode
    ) -> ([VirtualIPGroup], [Diagnostic]) {
        var diagnostics: [Diagnostic] = []
        // Pool name -> (interface, announcing L2Advertisement) for this node.
        var announced: [String: (interface: String, by: [String])] = [:]
        let poolsByName = Dictionary(manifests.addressPools.map { ($0.metadata.name, $0) }) { first, _ in first }
        for advertisement in manifests.l2Advertisements.sorted(by: { $0.metadata.key < $1.metadata.key }) {
            guard
                advertisement.nodeSelectors.isEmpty
                    || advertisement.nodeSelectors.contains(where: { $0.matches(node.labels) })
            else { continue }
            let interface: String
            if advertisement.interfaces.isEmpty {
                interface = node.interface ?? ""
            } else if let chosen = node.interface {
                guard advertisement.interfaces.contains(chosen) else { continue }
                interface = chosen
            } else {
                interface = advertisement.interfaces[0]
            }
            var pools = Set(advertisement.ipAddressPools)
            for pool in manifests.addressPools
            where advertisement.ipAddressPoolSelectors.contains(where: { $0.matches(pool.metadata.labels) }) {
                pools.insert(pool.metadata.name)
            }
            if advertisement.ipAddressPools.isEmpty && advertisement.ipAddressPoolSelectors.isEmpty {
                pools = Set(poolsByName.keys)
            }
            for pool in pools where announced[pool] == nil || announced[pool]?.interface == interface {
                announced[pool, default: (interface, [])].by.append(advertisement.metadata.key)
            }
        }
        // Legacy ConfigMap layer2 pools are announced from every node.
        for pool in manifests.addressPools where pool.legacyProtocol == "layer2" && announced[pool.metadata.name] == nil
        {
            announced[pool.metadata.name] = (node.interface ?? "", ["ConfigMap \(pool.metadata.key)"])
        }

        struct Entry {
            var interface: String
            var services: [String] = []
            var announcedBy: [String] = []
            var vridOverride: UInt8?
            var preferredNode: String?
        }
        var entries: [VRRPAddress: Entry] = [:]
        for allocation in allocations {
            guard let (interface, by) = announced[allocation.pool] else { continue }
            let parts = allocation.service.split(separator: "/", maxSplits: 1).map(String.init)
            let service = parts.count == 2 ? manifests.service(namespace: parts[0], name: parts[1]) : nil
            let annotations = service?.metadata.annotations ?? [:]
            // An invalid value is an error of the manifests (ManifestValidator); it is ignored here.
            let vrid = annotations[virtualRouterIDAnnotation].flatMap { UInt8($0) }.flatMap { $0 > 0 ? $0 : nil }
            for ip in allocation.ips {
                guard let address = VRRPAddress(ip) else { continue }
                var entry = entries[address] ?? Entry(interface: interface)
                entry.services.append(allocation.service)
                entry.announcedBy = Array(Set(entry.announcedBy + by)).sorted()
                entry.vridOverride = node.virtualRouterIDs[ip] ?? vrid ?? entry.vridOverride
                entry.preferredNode = annotations[preferredNodeAnnotation] ?? entry.preferredNode
                entries[address] = entry
            }
        }

        var groups: [VirtualIPGroup] = []
        for interface in Set(entries.values.map(\.interface)).sorted() {
            let addresses = entries.filter { $0.value.interface == interface }.keys.sorted()
            var overrides: [VRRPAddress: UInt8] = [:]
            for address in addresses { overrides[address] = entries[address]?.vridOverride }
            let vrids: [VRRPAddress: UInt8]
            do {
                vrids = try VirtualRouterPlacement.virtualRouterIDs(for: addresses.map { [$0] }, overrides: overrides)
            } catch {
                diagnostics.append(
                    .error(
                        at: SourceLocation(file: "(flags)", line: 0, column: 0),
                        "virtual IPs on interface \(interface.isEmpty ? "(none)" : interface): cannot assign VRIDs: \(error)"
                    )
                )
                continue
            }
            for address in addresses {
                guard let entry = entries[address], let vrid = vrids[address] else { continue }
                groups.append(
                    VirtualIPGroup(
                        virtualRouterID: Int(vrid),
                        family: address.family == .ipv4 ? "IPv4" : "IPv6",
                        addresses: [address.description],
                        services: Array(Set(entry.services)).sorted(),
                        interface: interface,
                        priority: Int(priority(of: node, for: address, preferredNode: entry.preferredNode)),
                        advertisementIntervalMilliseconds: Int(node.advertisementInterval / .milliseconds(1)),
                        preempt: node.preempt,
                        preemptDelayMilliseconds: Int(node.preemptDelay / .milliseconds(1)),
                        announcedBy: entry.announcedBy
                    )
                )
            }
        }
        return (groups, diagnostics)
    }

    /// This node's priority for `address`: the override, 254 on the preferred node, else ranked
    /// over `node.nodes` when they are known, else derived from a hash of node and address alone
    /// (1-250: different addresses prefer different nodes; equal values fall to the RFC's
    /// address tie-break).
    public static func priority(of node: VirtualIPNode, for address: VRRPAddress, preferredNode: String?) -> UInt8 {
        if let priority = node.priority { return priority }
        if let preferredNode, preferredNode == node.name { return preferredPriority }
        if node.nodes.count > 1 {
            let ranked = VirtualRouterPlacement.priorities(
                for: address,
                nodes: node.nodes + [node.name],
                preferredNode: preferredNode
            )
            if let priority = ranked[node.name] { return priority }
        }
        let hash = VirtualRouterPlacement.stableHash(Array("\(node.name)#\(address)".utf8))
        return UInt8(1 + hash % UInt64(VirtualRouterPlacement.highestDerivedPriority))
    }
}
