/// A pool of load-balancer addresses: a MetalLB `IPAddressPool` (or a legacy ConfigMap
/// `address-pools` entry), independent of how it was written down.
public struct AddressPool: Hashable, Sendable {
    /// The pool's name (`metadata.name`), unique among pools.
    public var name: String
    /// The entries of `spec.addresses` as written: CIDRs or `start-end` ranges.
    public var addresses: [String] {
        didSet { parse() }
    }
    /// `addresses` parsed, one result per entry, in the same order.
    public private(set) var parsedAddresses: [Result<IPRange, IPRangeError>] = []
    /// The valid ranges, in configuration order (invalid entries are left out).
    public private(set) var ranges: [IPRange] = []
    /// Whether Services without a specific request may get addresses from this pool (default true).
    public var autoAssign: Bool
    /// Whether IPv4 addresses ending in `.0` and `.255` are excluded (default false).
    public var avoidBuggyIPs: Bool
    /// Restricts which Services may use the pool; nil when the pool has none.
    public var serviceAllocation: ServiceAllocation?

    /// A pool; `addresses` are parsed immediately (see `validate(_:)` for the problems).
    public init(
        name: String,
        addresses: [String],
        autoAssign: Bool = true,
        avoidBuggyIPs: Bool = false,
        serviceAllocation: ServiceAllocation? = nil
    ) {
        self.name = name
        self.addresses = addresses
        self.autoAssign = autoAssign
        self.avoidBuggyIPs = avoidBuggyIPs
        self.serviceAllocation = serviceAllocation
        parse()
    }

    private mutating func parse() {
        parsedAddresses = addresses.map(IPRange.parse)
        ranges = parsedAddresses.compactMap { try? $0.get() }
    }

    /// The families the pool has addresses of, IPv4 first.
    public var families: [IPFamily] {
        let present = Set(ranges.map(\.family))
        return IPFamily.allCases.filter(present.contains)
    }

    /// Whether the pool can hand out `address` (in a range, and not skipped by `avoidBuggyIPs`).
    public func contains(_ address: IPAddress) -> Bool {
        if avoidBuggyIPs && address.confusesBuggyFirmware { return false }
        return ranges.contains { $0.contains(address) }
    }
}

/// `spec.serviceAllocation` of an `IPAddressPool`: which Services the pool serves, and its
/// precedence over other such pools.
public struct ServiceAllocation: Hashable, Sendable {
    /// Lower is preferred; 0 means unset and sorts after every set priority.
    public var priority: Int
    /// Namespaces whose Services may use the pool.
    public var namespaces: [String]
    /// Namespaces (by their labels) whose Services may use the pool, in addition to `namespaces`.
    public var namespaceSelectors: [LabelSelector]
    /// When non-empty, a Service may use the pool only if one selector matches its labels.
    public var serviceSelectors: [LabelSelector]

    /// A service allocation; everything empty means "every Service".
    public init(
        priority: Int = 0,
        namespaces: [String] = [],
        namespaceSelectors: [LabelSelector] = [],
        serviceSelectors: [LabelSelector] = []
    ) {
        self.priority = priority
        self.namespaces = namespaces
        self.namespaceSelectors = namespaceSelectors
        self.serviceSelectors = serviceSelectors
    }

    /// Whether the namespace restriction applies at all.
    ///
    /// Unlike MetalLB, namespace selectors that match no namespace do not lift the restriction:
    /// a pool limited to `team: a` namespaces stays closed until such a namespace exists.
    public var restrictsNamespaces: Bool { !namespaces.isEmpty || !namespaceSelectors.isEmpty }

    /// Whether Services of `namespace` may use the pool. `labels` are the namespace's labels;
    /// `kubernetes.io/metadata.name` is added as Kubernetes does.
    public func allows(namespace: String, labels: [String: String]) -> Bool {
        guard restrictsNamespaces else { return true }
        if namespaces.contains(namespace) { return true }
        var effective = labels
        effective["kubernetes.io/metadata.name"] = namespace
        return namespaceSelectors.contains { $0.matches(effective) }
    }

    /// Whether a Service with these labels passes `serviceSelectors`.
    public func allows(serviceLabels labels: [String: String]) -> Bool {
        serviceSelectors.isEmpty || serviceSelectors.contains { $0.matches(labels) }
    }
}
