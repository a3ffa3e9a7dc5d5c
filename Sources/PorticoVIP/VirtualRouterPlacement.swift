/// Deterministic placement of virtual routers: which node each address prefers (priorities)
/// and which VRID each group of addresses uses. Every node computes the same answer from the
/// same inputs, with no coordination; both are overridable.
///
/// The hash is FNV-1a (64 bits) with a SplitMix64 finaliser: stable across processes,
/// machines and Swift versions (unlike `Hasher`, which is seeded per process).
public enum VirtualRouterPlacement {
    /// The highest derived priority; 251-254 stay free for manual overrides, 255 for owners.
    public static let highestDerivedPriority: UInt8 = 250
    /// The largest gap between the priorities of consecutive nodes.
    public static let maximumPriorityStep = 10

    /// The priority of every node for the virtual router keyed by `address`.
    ///
    /// Nodes are ranked by `stableHash("<node>#<address>")` (highest first, ties by name), so
    /// different addresses prefer different nodes and the load spreads, like MetalLB's layer 2
    /// announcer. `preferredNode`, when it is one of `nodes`, is moved to the top. Rank r gets
    /// `250 - r * step` with `step = min(10, 240 / (nodes - 1))` (at least 1, never below 1),
    /// so priorities are distinct for up to 241 nodes; beyond that the lowest ranks share 1 and
    /// the RFC's address tie-break decides among them.
    /// For a dual-stack service, pass the same key address for both families so that both
    /// virtual routers prefer the same node.
    public static func priorities(
        for address: VRRPAddress,
        nodes: some Sequence<String>,
        preferredNode: String? = nil
    ) -> [String: UInt8] {
        let unique = Array(Set(nodes))
        let scored = unique.map { node in (node: node, score: stableHash(Array("\(node)#\(address)".utf8))) }
        let ranked = scored.sorted { lhs, rhs in
            if lhs.node == preferredNode || rhs.node == preferredNode { return lhs.node == preferredNode }
            return lhs.score != rhs.score ? lhs.score > rhs.score : lhs.node < rhs.node
        }
        let step = ranked.count > 1 ? max(1, min(maximumPriorityStep, 240 / (ranked.count - 1))) : 0
        var result: [String: UInt8] = [:]
        for (rank, entry) in ranked.enumerated() {
            result[entry.node] = UInt8(max(1, Int(highestDerivedPriority) - rank * step))
        }
        return result
    }

    /// The VRID of each group of addresses, keyed by the group's lowest address.
    ///
    /// VRIDs are a per-family space (RFC 5798: IPv4 and IPv6 virtual routers are separate), so
    /// each family is assigned independently. Per family:
    /// 1. groups with an override (keyed by any of their addresses) take it; two groups
    ///    overriding the same VRID, or one group with two different overrides, is an error;
    /// 2. the other groups, in ascending order of their lowest address, take
    ///    `1 + stableHash(lowest address) % 255`, or on a collision the next free VRID
    ///    (255 wraps to 1).
    ///
    /// Collision handling makes a colliding group's VRID depend on which other groups exist:
    /// adding a group with a lower address can move it (a brief re-election). Pin VRIDs that
    /// must never move with overrides. More than 255 groups of one family is an error.
    public static func virtualRouterIDs(
        for groups: [[VRRPAddress]],
        overrides: [VRRPAddress: UInt8] = [:]
    ) throws(VirtualRouterIDAssignmentError) -> [VRRPAddress: UInt8] {
        var result: [VRRPAddress: UInt8] = [:]
        var keyed: [VRRPAddress: [VRRPAddress]] = [:]
        for group in groups {
            guard let key = group.min() else { throw .emptyGroup }
            guard group.allSatisfy({ $0.family == key.family }) else { throw .mixedFamilies(key) }
            keyed[key, default: []] += group
        }
        for family in VRRPAddress.Family.allCases {
            let keys = keyed.keys.filter { $0.family == family }.sorted()
            var used: [UInt8: VRRPAddress] = [:]
            var pending: [VRRPAddress] = []
            for key in keys {
                let pinned = Set(keyed[key, default: []].compactMap { overrides[$0] })
                guard pinned.count <= 1 else { throw .conflictingOverrides(key) }
                guard let vrid = pinned.first else {
                    pending.append(key)
                    continue
                }
                guard vrid != 0 else { throw .overrideZero(key) }
                if let other = used[vrid] { throw .overrideCollision(vrid, other, key) }
                used[vrid] = key
                result[key] = vrid
            }
            for key in pending {
                guard used.count < 255 else { throw .exhausted(family) }
                var vrid = UInt8(1 + stableHash(key.bytes) % 255)
                while used[vrid] != nil { vrid = vrid == 255 ? 1 : vrid + 1 }
                used[vrid] = key
                result[key] = vrid
            }
        }
        return result
    }

    /// FNV-1a over `bytes`, finalised with SplitMix64 for avalanche.
    public static func stableHash(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        hash ^= hash >> 30
        hash &*= 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 27
        hash &*= 0x94D0_49BB_1331_11EB
        hash ^= hash >> 31
        return hash
    }
}

/// Why VRIDs could not be assigned.
public enum VirtualRouterIDAssignmentError: Error, Hashable, Sendable {
    /// A group without addresses.
    case emptyGroup
    /// A group mixing IPv4 and IPv6 (each family needs its own virtual router); names its key.
    case mixedFamilies(VRRPAddress)
    /// A group whose addresses carry different overrides; names its key.
    case conflictingOverrides(VRRPAddress)
    /// VRID 0 is reserved.
    case overrideZero(VRRPAddress)
    /// Two groups override the same VRID.
    case overrideCollision(UInt8, VRRPAddress, VRRPAddress)
    /// More than 255 groups of one family on one interface.
    case exhausted(VRRPAddress.Family)
}
