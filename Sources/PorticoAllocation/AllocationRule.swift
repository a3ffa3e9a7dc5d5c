/// The allocation rule that refused an address, a pool or a request (numbers refer to the
/// allocation spec).
public enum AllocationRule: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Rule 2: both `metallb.io/loadBalancerIPs` and `spec.loadBalancerIP` are set.
    case conflictingRequest
    /// Rule 2: a requested address is malformed, or there are too many, or their families
    /// do not fit the Service.
    case requestedIPs
    /// Rule 3: a requested address is in no pool.
    case addressNotInPool
    /// Rule 3: a requested address is `.0` or `.255` in an `avoidBuggyIPs` pool.
    case avoidBuggyIPs
    /// Rule 3: the requested addresses are not all in one pool.
    case requestedIPsInOnePool
    /// Rule 3: `metallb.io/address-pool` names another pool than the one owning the addresses.
    case requestedPoolMismatch
    /// Rule 4: `metallb.io/address-pool` names no configured pool.
    case unknownPool
    /// Rule 5: the pool has `autoAssign: false`.
    case autoAssignDisabled
    /// Rule 6: the Service's namespace is not allowed by `serviceAllocation`.
    case namespaces
    /// Rule 6: no `serviceAllocation.serviceSelectors` entry matches the Service's labels.
    case serviceSelectors
    /// Rule 7: the pool has no addresses of the family (or families) the Service needs.
    case ipFamily
    /// Rule 7: every address of the pool is taken and none can be shared.
    case poolExhausted
    /// Rule 8: the sharing keys differ, or one Service does not allow sharing.
    case sharingKey
    /// Rule 8: the backend keys differ (Local policy and selectors).
    case backendKey
    /// Rule 8: the (protocol, port) pair is already used on the address.
    case portInUse
    /// The same Service appears twice in the input.
    case duplicateService

    /// The rule in words, as shown after `rule:` in failure reasons.
    public var description: String {
        switch self {
        case .conflictingRequest: "use metallb.io/loadBalancerIPs or spec.loadBalancerIP, not both"
        case .requestedIPs: "at most two requested IPs, of different families, matching the Service's ipFamilies"
        case .addressNotInPool: "a requested IP must be in a pool's spec.addresses"
        case .avoidBuggyIPs: "a pool with avoidBuggyIPs does not hand out IPv4 addresses ending in .0 or .255"
        case .requestedIPsInOnePool: "all requested IPs must come from one pool"
        case .requestedPoolMismatch: "the requested IPs must belong to the pool named by metallb.io/address-pool"
        case .unknownPool: "metallb.io/address-pool must name a configured pool"
        case .autoAssignDisabled:
            "a pool with autoAssign: false is used only when a Service requests its IPs or names it"
        case .namespaces: "serviceAllocation.namespaces and namespaceSelectors must include the Service's namespace"
        case .serviceSelectors: "one of serviceAllocation.serviceSelectors must match the Service's labels"
        case .ipFamily: "the pool must have addresses of the Service's IP families"
        case .poolExhausted: "every address is taken and none can be shared with this Service"
        case .sharingKey: "services share an address only when both have the same metallb.io/allow-shared-ip key"
        case .backendKey: "Local-policy services share only with services that have the identical selector"
        case .portInUse: "each (protocol, port) pair may be used only once on an address"
        case .duplicateService: "each Service may appear only once"
        }
    }
}

/// Why one pool (or, with `pool` nil, the request itself) could not serve a Service.
public struct PoolRefusal: Hashable, Sendable, CustomStringConvertible {
    /// The pool; nil when the request was refused before any pool was considered.
    public var pool: String?
    /// The rule that refused.
    public var rule: AllocationRule
    /// Specifics (which namespace, which conflict), if any.
    public var detail: String?

    /// A refusal.
    public init(pool: String?, rule: AllocationRule, detail: String? = nil) {
        self.pool = pool
        self.rule = rule
        self.detail = detail
    }

    /// `pool "lan", rule: <rule>` followed by `: <detail>` when there is one.
    public var description: String {
        let head = pool.map { "pool \"\($0)\", rule: \(rule)" } ?? "rule: \(rule)"
        return detail.map { "\(head): \($0)" } ?? head
    }
}
