import PorticoAllocation
import Testing

/// Property: inserting, removing, reordering or changing OTHER Services never moves an existing
/// allocation; the result does not depend on input order; every result respects the sharing
/// rules and pool bounds; the lock round-trips.
@Suite struct StabilityPropertyTests {
    static let pools = [
        AddressPool(name: "lan", addresses: ["10.0.20.200-10.0.20.212"]),
        AddressPool(
            name: "dual",
            addresses: ["10.0.30.0/29", "2001:db8::/125"],
            avoidBuggyIPs: true,
            serviceAllocation: ServiceAllocation(priority: 1, namespaces: ["dual"])
        ),
        AddressPool(name: "manual", addresses: ["10.0.40.0/30"], autoAssign: false),
    ]
    static let portChoices = [udp(53), tcp(53), tcp(80), tcp(443), tcp(1688), udp(5353), udp(51820)]

    static func randomService(_ index: Int, using rng: inout SplitMix64) -> ServiceRequest {
        let namespace = ["dns", "web", "dual", "mail"].randomElement(using: &rng)!
        let local = Int.random(in: 0..<4, using: &rng) == 0
        var request = service(
            "\(namespace)/svc\(index)",
            sharingKey: [nil, "shared", "shared", "other"].randomElement(using: &rng)!,
            policy: local ? .local : .cluster,
            selector: ["app": ["a", "b"].randomElement(using: &rng)!],
            ports: Array(
                Set((0..<Int.random(in: 1...3, using: &rng)).map { _ in portChoices.randomElement(using: &rng)! })
            )
        )
        switch Int.random(in: 0..<10, using: &rng) {
        case 0, 1: request.requestedAddresses = .addresses(["10.0.20.\(Int.random(in: 198...214, using: &rng))"])
        case 2: request.requestedPool = ["manual", "lan", "missing"].randomElement(using: &rng)!
        case 3 where namespace == "dual": request.ipFamilyPolicy = .requireDualStack
        case 4 where namespace == "dual": request.ipFamilyPolicy = .preferDualStack
        default: break
        }
        return request
    }

    static func checkInvariants(_ result: AllocationResult, services: [ServiceRequest]) {
        let byKey = Dictionary(uniqueKeysWithValues: services.map { ($0.key, $0) })
        var usersByIP: [IPAddress: [ServiceRequest]] = [:]
        for allocation in result.allocations {
            let pool = pools.first { $0.name == allocation.pool }
            #expect(pool != nil && allocation.ips.allSatisfy { pool!.contains($0) })
            #expect(result.failure(for: allocation.service) == nil)
            for address in allocation.ips { usersByIP[address, default: []].append(byKey[allocation.service]!) }
        }
        for (address, users) in usersByIP {
            for (index, first) in users.enumerated() {
                for second in users[(index + 1)...] {
                    #expect(
                        first.sharingConflict(with: second, on: address) == nil,
                        "\(first.key) and \(second.key) on \(address)"
                    )
                }
            }
        }
        let loadBalancers = services.filter(\.isLoadBalancer).count
        #expect(result.allocations.count + result.failures.count == loadBalancers)
        #expect((try? AllocationLock.decode(result.lock.encode())) == result.lock)
    }

    @Test(arguments: [UInt64(1), 42, 2024, 0xDEAD_BEEF])
    func existingAllocationsNeverMove(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let universe = (0..<40).map { Self.randomService($0, using: &rng) }
        var present: [ServiceRequest] = Array(universe.prefix(8))
        var lock = AllocationLock()
        var previous = Allocator.allocate(services: present, pools: Self.pools, previous: lock)
        lock = previous.lock
        var moves = 0
        var kept = 0
        for step in 0..<300 {
            var changed: Set<ServiceKey> = []
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                let absent = universe.filter { candidate in !present.contains { $0.key == candidate.key } }
                if let added = absent.randomElement(using: &rng) { present.append(added) }
            case 1:
                if !present.isEmpty { present.remove(at: Int.random(in: 0..<present.count, using: &rng)) }
            case 2:
                if !present.isEmpty {
                    let index = Int.random(in: 0..<present.count, using: &rng)
                    var replacement = Self.randomService(0, using: &rng)
                    replacement.namespace = present[index].namespace
                    replacement.name = present[index].name
                    present[index] = replacement
                    changed.insert(replacement.key)
                }
            default:
                break
            }
            present.shuffle(using: &rng)
            let result = Allocator.allocate(services: present, pools: Self.pools, previous: lock)
            for service in present where !changed.contains(service.key) {
                guard let before = previous.allocation(for: service.key) else { continue }
                let after = result.allocation(for: service.key)
                if after?.ips != before.ips || after?.isNew != false { moves += 1 }
                kept += 1
                #expect(
                    after?.ips == before.ips,
                    "step \(step): \(service.key) moved from \(before.ips) to \(after?.ips ?? [])"
                )
            }
            let reordered = Allocator.allocate(
                services: present.shuffled(using: &rng),
                pools: Self.pools.reversed(),
                previous: lock
            )
            #expect(reordered == result, "step \(step): the result depends on input order")
            Self.checkInvariants(result, services: present)
            previous = result
            lock = result.lock
        }
        #expect(moves == 0)
        #expect(kept > 300, "the walk should keep many allocations, kept \(kept)")
    }

    @Test func aFreshStartWithTheSameInputsGivesTheSameResult() {
        var rng = SplitMix64(seed: 7)
        let services = (0..<30).map { Self.randomService($0, using: &rng) }
        let first = Allocator.allocate(services: services, pools: Self.pools)
        for _ in 0..<20 {
            #expect(
                Allocator.allocate(services: services.shuffled(using: &rng), pools: Self.pools.shuffled(using: &rng))
                    == first
            )
        }
        #expect(first.allocations.count > 10 && !first.failures.isEmpty)
        Self.checkInvariants(first, services: services)
    }

    @Test func splitMix64IsTheReferenceSequence() {
        // First outputs of the reference SplitMix64 for seed 0.
        var rng = SplitMix64(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
    }
}
