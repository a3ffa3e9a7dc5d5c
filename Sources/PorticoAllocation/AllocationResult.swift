/// The outcome of one allocation run. Every list is sorted by Service key.
public struct AllocationResult: Hashable, Sendable {
    /// Services that have addresses.
    public var allocations: [Allocation]
    /// Previous allocations that were given up (a Service may also appear in `allocations`
    /// when it was allocated again).
    public var releases: [Release]
    /// LoadBalancer Services that got no address.
    public var failures: [AllocationFailure]
    /// The lock to record for the next run.
    public var lock: AllocationLock

    /// The allocation of `service`, if it has one.
    public func allocation(for service: ServiceKey) -> Allocation? {
        allocations.first { $0.service == service }
    }

    /// Why `service` got no address, if it failed.
    public func failure(for service: ServiceKey) -> AllocationFailure? {
        failures.first { $0.service == service }
    }
}

/// The addresses a Service got.
public struct Allocation: Hashable, Sendable {
    /// The Service.
    public var service: ServiceKey
    /// Its addresses: one, or one per family (in the Service's family order).
    public var ips: [IPAddress]
    /// The pool they belong to.
    public var pool: String
    /// False when the Service kept exactly its previous addresses.
    public var isNew: Bool

    /// An allocation.
    public init(service: ServiceKey, ips: [IPAddress], pool: String, isNew: Bool) {
        self.service = service
        self.ips = ips
        self.pool = pool
        self.isNew = isNew
    }
}

/// A previous allocation that was given up.
public struct Release: Hashable, Sendable {
    /// The Service that held the addresses.
    public var service: ServiceKey
    /// The addresses it held.
    public var ips: [IPAddress]
    /// The pool recorded for them.
    public var pool: String
    /// Why they were released.
    public var reason: ReleaseReason

    /// A release.
    public init(service: ServiceKey, ips: [IPAddress], pool: String, reason: ReleaseReason) {
        self.service = service
        self.ips = ips
        self.pool = pool
        self.reason = reason
    }
}

/// Why a previous allocation was not kept (rule 10 and "still compatible").
public enum ReleaseReason: Hashable, Sendable, CustomStringConvertible {
    /// The Service no longer exists.
    case serviceDeleted
    /// The Service is no longer of type LoadBalancer (rule 1).
    case notLoadBalancer
    /// The Service appears twice in the input.
    case duplicateService
    /// The Service's request is now invalid (rule 2); the failure says why.
    case invalidRequest
    /// The Service now requests other addresses.
    case requestedIPsChanged
    /// The Service now names another pool in `metallb.io/address-pool`.
    case requestedPoolChanged(String)
    /// These addresses are no longer in any pool (rule 10).
    case notInAnyPool([IPAddress])
    /// The addresses are still in pools, but no longer in one pool.
    case notInOnePool
    /// The pool owning the addresses no longer accepts the Service (rule 6).
    case poolRefusesService(PoolRefusal)
    /// The addresses no longer fit the Service's IP families or family policy.
    case ipFamiliesChanged
    /// The Service can no longer share the address with a Service kept before it (rule 8).
    case sharingConflict(SharingConflict)

    public var description: String {
        switch self {
        case .serviceDeleted: "the Service no longer exists"
        case .notLoadBalancer: "the Service is no longer of type LoadBalancer"
        case .duplicateService: "the Service is defined more than once"
        case .invalidRequest: "the Service's address request is invalid"
        case .requestedIPsChanged: "the Service now requests other IPs"
        case .requestedPoolChanged(let pool): "the Service now requests pool \"\(pool)\""
        case .notInAnyPool(let ips): "\(ips.map { "\"\($0)\"" }.joined(separator: ", ")) no longer in any pool"
        case .notInOnePool: "the addresses are no longer in one pool"
        case .poolRefusesService(let refusal): "the pool no longer accepts the Service (\(refusal))"
        case .ipFamiliesChanged: "the addresses no longer match the Service's ipFamilies or ipFamilyPolicy"
        case .sharingConflict(let conflict): "the address can no longer be shared: \(conflict.message)"
        }
    }
}

/// Why a LoadBalancer Service got no address.
public struct AllocationFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The Service.
    public var service: ServiceKey
    /// The error in MetalLB's wording, e.g. `no available IPs` or `unknown pool "x"`.
    public var error: String
    /// Which pool and which rule refused; for automatic allocation, one entry per pool.
    public var refusals: [PoolRefusal]
    /// The sharing conflict behind the failure, if there was one.
    public var conflict: SharingConflict?

    /// A failure.
    public init(service: ServiceKey, error: String, refusals: [PoolRefusal], conflict: SharingConflict? = nil) {
        self.service = service
        self.error = error
        self.refusals = refusals
        self.conflict = conflict
    }

    /// `Failed to allocate IP for "ns/name": <error> (pool "p", rule: ...; ...)`.
    public var reason: String {
        let head = "Failed to allocate IP for \"\(service)\": \(error)"
        if refusals.isEmpty { return head }
        return head + " (" + refusals.map(\.description).joined(separator: "; ") + ")"
    }

    /// What to change, when the failure is a sharing conflict.
    public var explanation: String? { conflict?.explanation }

    public var description: String { reason }
}
