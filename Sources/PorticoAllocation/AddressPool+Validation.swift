/// A configuration problem in an address pool, naming the pool and the field.
public struct PoolProblem: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The pool's name.
    public var pool: String
    /// The field, in `IPAddressPool` terms: `metadata.name`, `spec.addresses`, `spec.addresses[1]`,
    /// `spec.serviceAllocation.serviceSelectors[0].matchExpressions[2]`.
    public var field: String
    /// What is wrong and, where possible, what to write instead.
    public var message: String

    /// A problem.
    public init(pool: String, field: String, message: String) {
        self.pool = pool
        self.field = field
        self.message = message
    }

    /// `pool "lan": spec.addresses[1]: message`.
    public var description: String { "pool \"\(pool)\": \(field): \(message)" }
}

extension AddressPool {
    /// Checks a set of pools as MetalLB does: duplicate names, pools without addresses,
    /// unparsable entries, ranges whose start is after their end or that mix families, and
    /// addresses claimed twice (by two pools or twice in one pool). Also checks label selectors.
    ///
    /// Problems come in configuration order; an overlap is reported on the later entry.
    public static func validate(_ pools: [AddressPool]) -> [PoolProblem] {
        var problems: [PoolProblem] = []
        var seenNames: Set<String> = []
        var claimed: [(pool: String, index: Int, text: String, range: IPRange)] = []
        for pool in pools {
            func problem(_ field: String, _ message: String) {
                problems.append(PoolProblem(pool: pool.name, field: field, message: message))
            }
            if pool.name.isEmpty {
                problem("metadata.name", "the pool has no name")
            } else if !seenNames.insert(pool.name).inserted {
                problem("metadata.name", "duplicate pool name \"\(pool.name)\"")
            }
            if pool.addresses.isEmpty {
                problem("spec.addresses", "the pool has no addresses")
            }
            for (index, parsed) in pool.parsedAddresses.enumerated() {
                let field = "spec.addresses[\(index)]"
                switch parsed {
                case .failure(let error):
                    problem(field, error.description)
                case .success(let range):
                    if let earlier = claimed.first(where: { $0.range.overlaps(range) }) {
                        let place =
                            earlier.pool == pool.name
                            ? "spec.addresses[\(earlier.index)] of the same pool"
                            : "pool \"\(earlier.pool)\" spec.addresses[\(earlier.index)]"
                        problem(
                            field,
                            "\"\(pool.addresses[index])\" overlaps with already defined \"\(earlier.text)\" (\(place))"
                        )
                    }
                    claimed.append((pool.name, index, pool.addresses[index], range))
                }
            }
            if let allocation = pool.serviceAllocation {
                let groups = [
                    ("namespaceSelectors", allocation.namespaceSelectors),
                    ("serviceSelectors", allocation.serviceSelectors),
                ]
                for (group, selectors) in groups {
                    for (selectorIndex, selector) in selectors.enumerated() {
                        for (index, requirement) in selector.matchExpressions.enumerated() {
                            guard let message = requirement.problem else { continue }
                            problem(
                                "spec.serviceAllocation.\(group)[\(selectorIndex)].matchExpressions[\(index)]",
                                "key \"\(requirement.key)\": \(message)"
                            )
                        }
                    }
                }
            }
        }
        return problems
    }
}
