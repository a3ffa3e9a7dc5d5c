import PorticoVIP
import Testing

@Suite("Deterministic placement: priorities and VRIDs")
struct VirtualRouterPlacementTests {
    let nodes = ["node-a", "node-b", "node-c"]

    /// Pinned values (computed independently in Python): a change here moves every address in
    /// every cluster, so it must never change by accident.
    @Test func hashIsStableAcrossRuns() {
        #expect(VirtualRouterPlacement.stableHash([]) == 0xF52A_15E9_A9B5_E89B)
        #expect(VirtualRouterPlacement.stableHash(Array("node-a#10.0.0.1".utf8)) == 0xA652_2712_DF3B_99B5)
    }

    @Test func prioritiesAreDistinctDeterministicAndInRange() {
        let address = VRRPAddress(literal: "10.0.20.200")
        let priorities = VirtualRouterPlacement.priorities(for: address, nodes: nodes)
        #expect(Set(priorities.keys) == Set(nodes))
        #expect(Set(priorities.values) == [250, 240, 230])
        #expect(VirtualRouterPlacement.priorities(for: address, nodes: nodes.reversed()) == priorities)
        #expect(VirtualRouterPlacement.priorities(for: address, nodes: nodes + ["node-a"]) == priorities)
    }

    @Test func differentAddressesPreferDifferentNodes() {
        var preferred: [String: Int] = [:]
        for last in 1...240 {
            let priorities = VirtualRouterPlacement.priorities(for: .ipv4(0x0A00_0000 | UInt32(last)), nodes: nodes)
            let top = priorities.max { $0.value < $1.value }!.key
            preferred[top, default: 0] += 1
        }
        #expect(preferred.count == 3)
        #expect(preferred.values.allSatisfy { $0 > 50 })  // ~80 each
    }

    @Test func preferredNodeOverridesTheHash() {
        let address = VRRPAddress(literal: "10.0.20.200")
        for node in nodes {
            let priorities = VirtualRouterPlacement.priorities(for: address, nodes: nodes, preferredNode: node)
            #expect(priorities[node] == 250)
        }
        let unknown = VirtualRouterPlacement.priorities(for: address, nodes: nodes, preferredNode: "node-z")
        #expect(unknown == VirtualRouterPlacement.priorities(for: address, nodes: nodes))
    }

    @Test func manyNodesStayWithinValidPriorities() {
        let many = (0..<300).map { "node-\($0)" }
        let priorities = VirtualRouterPlacement.priorities(for: VRRPAddress(literal: "10.0.0.1"), nodes: many)
        #expect(priorities.values.allSatisfy { (1...250).contains($0) })
        #expect(Set(priorities.values).count == 250)
        #expect(
            VirtualRouterPlacement.priorities(for: VRRPAddress(literal: "10.0.0.1"), nodes: ["solo"]) == ["solo": 250]
        )
    }

    @Test func virtualRouterIDsAreDeterministicAndUniquePerFamily() throws {
        let groups =
            (1...200).map { [VRRPAddress.ipv4(0x0A00_0000 | UInt32($0))] }
            + (1...200).map { [VRRPAddress.ipv6(high: 0x2001_0DB8 << 32, low: UInt64($0))] }
        let ids = try VirtualRouterPlacement.virtualRouterIDs(for: groups)
        #expect(ids.count == 400)
        #expect(!ids.values.contains(0))
        let ipv4 = ids.filter { $0.key.family == .ipv4 }.map(\.value)
        let ipv6 = ids.filter { $0.key.family == .ipv6 }.map(\.value)
        #expect(Set(ipv4).count == 200)
        #expect(Set(ipv6).count == 200)
        #expect(try VirtualRouterPlacement.virtualRouterIDs(for: groups.reversed()) == ids)
    }

    @Test func groupsShareOneIDKeyedByTheirLowestAddress() throws {
        let group = [VRRPAddress(literal: "10.0.0.9"), VRRPAddress(literal: "10.0.0.5")]
        let ids = try VirtualRouterPlacement.virtualRouterIDs(for: [group])
        #expect(Array(ids.keys) == [VRRPAddress(literal: "10.0.0.5")])
        #expect(ids.values.first == UInt8(1 + VirtualRouterPlacement.stableHash([10, 0, 0, 5]) % 255))
    }

    @Test func overridesWinAndCollisionsProbeToTheNextFreeID() throws {
        let first = VRRPAddress(literal: "10.0.0.1")
        let second = VRRPAddress(literal: "10.0.0.2")
        let natural = try VirtualRouterPlacement.virtualRouterIDs(for: [[first]])[first]!
        // Pin `second` onto `first`'s natural VRID: `first` moves to the next free one.
        let ids = try VirtualRouterPlacement.virtualRouterIDs(for: [[first], [second]], overrides: [second: natural])
        #expect(ids[second] == natural)
        #expect(ids[first] == (natural == 255 ? 1 : natural + 1))
    }

    @Test func rejectsImpossibleAssignments() {
        let first = VRRPAddress(literal: "10.0.0.1")
        let second = VRRPAddress(literal: "10.0.0.2")
        #expect(throws: VirtualRouterIDAssignmentError.overrideCollision(7, first, second)) {
            try VirtualRouterPlacement.virtualRouterIDs(for: [[first], [second]], overrides: [first: 7, second: 7])
        }
        #expect(throws: VirtualRouterIDAssignmentError.conflictingOverrides(first)) {
            try VirtualRouterPlacement.virtualRouterIDs(for: [[first, second]], overrides: [first: 7, second: 8])
        }
        #expect(throws: VirtualRouterIDAssignmentError.overrideZero(first)) {
            try VirtualRouterPlacement.virtualRouterIDs(for: [[first]], overrides: [first: 0])
        }
        #expect(throws: VirtualRouterIDAssignmentError.mixedFamilies(first)) {
            try VirtualRouterPlacement.virtualRouterIDs(for: [[first, VRRPAddress(literal: "2001:db8::1")]])
        }
        #expect(throws: VirtualRouterIDAssignmentError.emptyGroup) {
            try VirtualRouterPlacement.virtualRouterIDs(for: [[]])
        }
        let tooMany = (1...256).map { [VRRPAddress.ipv4(UInt32($0))] }
        #expect(throws: VirtualRouterIDAssignmentError.exhausted(.ipv4)) {
            try VirtualRouterPlacement.virtualRouterIDs(for: tooMany)
        }
    }
}
