/// The load-balancer address allocator (MetalLB's rules, made stable and explained).
///
/// `allocate` is a pure, deterministic function: the same Services, pools, lock and namespace
/// labels give the same result, whatever order the Services and pools are listed in (pools
/// that tie are taken by name). It works in three passes:
///
/// 1. Previous allocations (the lock) are kept while still compatible. An allocation is still
///    compatible when the Service still exists and is a LoadBalancer; its request is still
///    valid; if it requests IPs, they are exactly the recorded ones; if it names a pool, the
///    addresses are in that pool; the addresses are all still in one pool (honouring
///    `avoidBuggyIPs`), and that pool still accepts the Service (rule 6; `autoAssign` does not
///    matter); the addresses still fit the Service's IP families and policy; and sharing still
///    holds with the allocations kept before it. Kept allocations whose sharing attributes
///    (key, backend key, ports) did not change since the lock are checked first, so a Service
///    that changed cannot push out one that did not; ties go by namespace/name.
/// 2. New Services requesting specific IPs: the largest group of compatible claimants of an
///    address (same sharing and backend keys) goes first, then namespace/name.
/// 3. Other new Services, by namespace/name: from the pool they name, or automatically.
///
/// New Services never take an address from a kept one, so adding, removing or reordering
/// other Services never moves an existing allocation.
///
/// Pools are expected to have passed `AddressPool.validate(_:)`: unparsable entries are
/// ignored here, and an address in two pools belongs to the first by name.
public enum Allocator {
    /// Allocates addresses to `services` from `pools`, keeping `previous` where possible.
    /// `namespaceLabels` maps a namespace to its labels, for `namespaceSelectors`.
    public static func allocate(
        services: [ServiceRequest],
        pools: [AddressPool],
        previous: AllocationLock = AllocationLock(),
        namespaceLabels: [String: [String: String]] = [:]
    ) -> AllocationResult {
        var run = AllocationRun(pools: pools, namespaceLabels: namespaceLabels)
        return run.allocate(services: services, previous: previous)
    }
}

private struct AllocationRun {
    /// Pools sorted by name (stable), the order used whenever pools tie.
    let pools: [AddressPool]
    let poolsByName: [String: AddressPool]
    let namespaceLabels: [String: [String: String]]

    var users: [IPAddress: [AddressUser]] = [:]
    let scanCursors = ScanCursors()
    var allocations: [Allocation] = []
    var releases: [Release] = []
    var failures: [AllocationFailure] = []

    init(pools: [AddressPool], namespaceLabels: [String: [String: String]]) {
        let sorted = pools.enumerated().sorted { ($0.element.name, $0.offset) < ($1.element.name, $1.offset) }.map(
            \.element
        )
        self.pools = sorted
        self.poolsByName = Dictionary(sorted.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.namespaceLabels = namespaceLabels
    }

    mutating func allocate(services: [ServiceRequest], previous: AllocationLock) -> AllocationResult {
        let grouped = Dictionary(grouping: services, by: \.key)
        let duplicates = Set(grouped.filter { $0.value.count > 1 }.keys)
        var byKey: [ServiceKey: ServiceRequest] = [:]
        for (key, group) in grouped where group.count == 1 { byKey[key] = group[0] }
        for key in duplicates.sorted() {
            failures.append(
                AllocationFailure(
                    service: key,
                    error: "the service is defined \(grouped[key]!.count) times",
                    refusals: [PoolRefusal(pool: nil, rule: .duplicateService)]
                )
            )
        }

        keepPrevious(previous, services: byKey, duplicates: duplicates)

        let kept = Set(allocations.map(\.service))
        var specific: [(service: ServiceRequest, ips: [IPAddress])] = []
        var automatic: [ServiceRequest] = []
        for service in byKey.values.sorted(by: { $0.key < $1.key })
        where service.isLoadBalancer && !kept.contains(service.key) {
            switch requestedIPs(of: service) {
            case .failure(let failure): failures.append(failure)
            case .success(let ips) where ips.isEmpty: automatic.append(service)
            case .success(let ips): specific.append((service, ips))
            }
        }
        for (service, ips) in orderedByClaimGroup(specific) {
            allocateSpecific(service, ips: ips, previous: previous[service.key])
        }
        for service in automatic {
            allocateAutomatically(service, previous: previous[service.key])
        }

        allocations.sort { $0.service < $1.service }
        releases.sort { $0.service < $1.service }
        failures.sort { $0.service < $1.service }
        let lockEntries = allocations.map { allocation in
            let service = byKey[allocation.service]!
            return AllocationLock.Entry(
                service: allocation.service,
                ips: allocation.ips,
                pool: allocation.pool,
                sharingKey: service.sharingKey,
                backendKey: service.backendKey,
                ports: service.ports
            )
        }
        return AllocationResult(
            allocations: allocations,
            releases: releases,
            failures: failures,
            lock: AllocationLock(entries: lockEntries)
        )
    }

    // MARK: Pass 1: previous allocations

    private mutating func keepPrevious(
        _ previous: AllocationLock,
        services: [ServiceKey: ServiceRequest],
        duplicates: Set<ServiceKey>
    ) {
        var candidates: [(entry: AllocationLock.Entry, service: ServiceRequest, pool: AddressPool, unchanged: Bool)] =
            []
        for entry in previous.entries {
            func release(_ reason: ReleaseReason) {
                releases.append(Release(service: entry.service, ips: entry.ips, pool: entry.pool, reason: reason))
            }
            guard let service = services[entry.service] else {
                release(duplicates.contains(entry.service) ? .duplicateService : .serviceDeleted)
                continue
            }
            guard service.isLoadBalancer else {
                release(.notLoadBalancer)
                continue
            }
            switch owner(of: entry, for: service) {
            case .release(let reason):
                release(reason)
            case .keep(let pool):
                let unchanged =
                    entry.sharingKey == service.sharingKey && (entry.backendKey ?? "") == service.backendKey
                    && entry.ports == Array(Set(service.ports)).sorted()
                candidates.append((entry, service, pool, unchanged))
            }
        }
        candidates.sort { ($0.unchanged ? 0 : 1, $0.entry.service) < ($1.unchanged ? 0 : 1, $1.entry.service) }
        for candidate in candidates {
            let user = AddressUser(candidate.service)
            let conflicts = candidate.entry.ips.compactMap { conflict(for: user, at: $0) }
            if let conflict = conflicts.first {
                releases.append(
                    Release(
                        service: candidate.entry.service,
                        ips: candidate.entry.ips,
                        pool: candidate.entry.pool,
                        reason: .sharingConflict(conflict)
                    )
                )
                continue
            }
            admit(candidate.service, ips: candidate.entry.ips, pool: candidate.pool, previous: candidate.entry)
        }
    }

    /// The pool still owning a previous allocation, or why the allocation cannot be kept.
    private func owner(of entry: AllocationLock.Entry, for service: ServiceRequest) -> OwnerCheck {
        switch requestedIPs(of: service) {
        case .failure: return .release(.invalidRequest)
        case .success(let ips) where !ips.isEmpty && Set(ips) != Set(entry.ips): return .release(.requestedIPsChanged)
        case .success: break
        }
        let owners = pools.filter { pool in entry.ips.allSatisfy(pool.contains) }
        guard let pool = owners.first(where: { $0.name == entry.pool }) ?? owners.first else {
            let outside = entry.ips.filter { ip in !pools.contains { $0.contains(ip) } }
            return .release(outside.isEmpty ? .notInOnePool : .notInAnyPool(outside))
        }
        if let requested = service.requestedPool, requested != pool.name {
            return .release(.requestedPoolChanged(requested))
        }
        if let refusal = refusal(of: pool, for: service) { return .release(.poolRefusesService(refusal)) }
        let families = entry.ips.map(\.family)
        let declared = declaredFamilies(of: service)
        let fits: Bool
        switch service.ipFamilyPolicy {
        case .singleStack: fits = families.count == 1 && (declared.isEmpty || families[0] == declared[0])
        case .requireDualStack: fits = Set(families).count == 2 && families.count == 2
        case .preferDualStack:
            fits =
                (1...2).contains(families.count) && Set(families).count == families.count
                && (declared.isEmpty || families.allSatisfy(declared.contains))
        }
        return fits ? .keep(pool) : .release(.ipFamiliesChanged)
    }

    enum OwnerCheck {
        case keep(AddressPool)
        case release(ReleaseReason)
    }

    // MARK: Pass 2: specific IPs

    /// Largest group of compatible claimants first (same sharing and backend keys, overlapping
    /// addresses), then namespace/name.
    private func orderedByClaimGroup(
        _ claims: [(service: ServiceRequest, ips: [IPAddress])]
    ) -> [(service: ServiceRequest, ips: [IPAddress])] {
        let sized = claims.map { claim in
            let size =
                claim.service.sharingKey == nil
                ? 1
                : claims.filter {
                    $0.service.sharingKey == claim.service.sharingKey
                        && $0.service.backendKey == claim.service.backendKey && !Set($0.ips).isDisjoint(with: claim.ips)
                }.count
            return (claim: claim, size: size)
        }
        return sized.sorted { (-$0.size, $0.claim.service.key) < (-$1.size, $1.claim.service.key) }.map(\.claim)
    }

    private mutating func allocateSpecific(_ service: ServiceRequest, ips: [IPAddress], previous: AllocationLock.Entry?)
    {
        func fail(_ error: String, _ refusal: PoolRefusal, _ conflict: SharingConflict? = nil) {
            failures.append(
                AllocationFailure(service: service.key, error: error, refusals: [refusal], conflict: conflict)
            )
        }
        if let requested = service.requestedPool, poolsByName[requested] == nil {
            return fail("unknown pool \"\(requested)\"", PoolRefusal(pool: requested, rule: .unknownPool))
        }
        let owners = pools.filter { pool in ips.allSatisfy(pool.contains) }
        guard let pool = owners.first(where: { $0.name == service.requestedPool }) ?? owners.first else {
            for ip in ips where !pools.contains(where: { $0.contains(ip) }) {
                let buggy = pools.first { pool in pool.avoidBuggyIPs && pool.ranges.contains { $0.contains(ip) } }
                return fail(
                    "\"\(ip)\" is not allowed in config",
                    buggy.map { PoolRefusal(pool: $0.name, rule: .avoidBuggyIPs) }
                        ?? PoolRefusal(pool: nil, rule: .addressNotInPool)
                )
            }
            let places = ips.map { ip in "\"\(ip)\" is in pool \"\(pools.first { $0.contains(ip) }!.name)\"" }
            return fail(
                "requested IPs \(ips.map { "\"\($0)\"" }.joined(separator: ", ")) are not in one pool",
                PoolRefusal(pool: nil, rule: .requestedIPsInOnePool, detail: places.joined(separator: ", "))
            )
        }
        if let requested = service.requestedPool, requested != pool.name {
            return fail(
                "\"\(ips[0])\" is not in the requested pool \"\(requested)\"",
                PoolRefusal(
                    pool: pool.name,
                    rule: .requestedPoolMismatch,
                    detail: "the IPs belong to pool \"\(pool.name)\""
                )
            )
        }
        if let refusal = refusal(of: pool, for: service) {
            return fail("pool \"\(pool.name)\" is not compatible with the service", refusal)
        }
        let user = AddressUser(service)
        for ip in ips {
            if let conflict = conflict(for: user, at: ip) {
                return fail(conflict.message, PoolRefusal(pool: pool.name, rule: conflict.rule), conflict)
            }
        }
        admit(service, ips: ips, pool: pool, previous: previous)
    }

    // MARK: Pass 3: automatic

    private mutating func allocateAutomatically(_ service: ServiceRequest, previous: AllocationLock.Entry?) {
        let user = AddressUser(service)
        if let requested = service.requestedPool {
            guard let pool = poolsByName[requested] else {
                failures.append(
                    AllocationFailure(
                        service: service.key,
                        error: "unknown pool \"\(requested)\"",
                        refusals: [PoolRefusal(pool: requested, rule: .unknownPool)]
                    )
                )
                return
            }
            switch take(for: service, user: user, from: pool) {
            case .success(let ips):
                admit(service, ips: ips, pool: pool, previous: previous)
            case .failure(let refused):
                failures.append(
                    AllocationFailure(
                        service: service.key,
                        error: "no available IPs",
                        refusals: [refused.refusal],
                        conflict: refused.conflict
                    )
                )
            }
            return
        }

        var refusals: [PoolRefusal] = []
        var preferred: [AddressPool] = []
        var general: [AddressPool] = []
        for pool in pools {
            if !pool.autoAssign {
                refusals.append(PoolRefusal(pool: pool.name, rule: .autoAssignDisabled))
            } else if pool.serviceAllocation == nil {
                general.append(pool)
            } else if let refusal = refusal(of: pool, for: service) {
                refusals.append(refusal)
            } else {
                preferred.append(pool)
            }
        }
        func rank(_ pool: AddressPool) -> Int {
            let priority = pool.serviceAllocation?.priority ?? 0
            return priority == 0 ? Int.max : priority
        }
        // Stable: equal priorities keep name order.
        preferred = preferred.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(
            \.element
        )
        var firstConflict: SharingConflict?
        for pool in preferred + general {
            switch take(for: service, user: user, from: pool) {
            case .success(let ips):
                admit(service, ips: ips, pool: pool, previous: previous)
                return
            case .failure(let refused):
                refusals.append(refused.refusal)
                firstConflict = firstConflict ?? refused.conflict
            }
        }
        if pools.isEmpty {
            refusals.append(PoolRefusal(pool: nil, rule: .addressNotInPool, detail: "no address pool is configured"))
        }
        failures.append(
            AllocationFailure(
                service: service.key,
                error: "no available IPs",
                refusals: refusals,
                conflict: firstConflict
            )
        )
    }

    private struct Refused: Error {
        var refusal: PoolRefusal
        var conflict: SharingConflict?
    }

    /// One address per needed family from `pool` (rule 7), or why the pool cannot serve.
    private func take(
        for service: ServiceRequest,
        user: AddressUser,
        from pool: AddressPool
    ) -> Result<
        [IPAddress], Refused
    > {
        if let refusal = refusal(of: pool, for: service) { return .failure(Refused(refusal: refusal)) }
        let families: [IPFamily]
        switch familiesToTake(for: service, from: pool) {
        case .success(let wanted): families = wanted
        case .failure(let refused): return .failure(refused)
        }
        var ips: [IPAddress] = []
        for family in families {
            let (found, conflict) = firstUsableAddress(for: user, family: family, in: pool)
            guard let found else {
                let detail = conflict.map { "first conflict: \($0.message)" } ?? "no \(family) address is left"
                return .failure(
                    Refused(
                        refusal: PoolRefusal(pool: pool.name, rule: .poolExhausted, detail: detail),
                        conflict: conflict
                    )
                )
            }
            ips.append(found)
        }
        return .success(ips)
    }

    private func familiesToTake(for service: ServiceRequest, from pool: AddressPool) -> Result<[IPFamily], Refused> {
        let available = pool.families
        let declared = declaredFamilies(of: service)
        func refuse(_ detail: String) -> Result<[IPFamily], Refused> {
            .failure(Refused(refusal: PoolRefusal(pool: pool.name, rule: .ipFamily, detail: detail)))
        }
        let has = available.isEmpty ? "no valid addresses" : "only \(available.map(\.rawValue).joined()) addresses"
        switch service.ipFamilyPolicy {
        case .singleStack:
            guard let family = declared.first ?? available.first, available.contains(family) else {
                return refuse("the Service needs \(declared.first ?? .ipv4) and the pool has \(has)")
            }
            return .success([family])
        case .requireDualStack:
            guard available.count == 2 else {
                return refuse("RequireDualStack needs IPv4 and IPv6 and the pool has \(has)")
            }
            return .success(declared + IPFamily.allCases.filter { !declared.contains($0) })
        case .preferDualStack:
            let wanted = (declared.isEmpty ? IPFamily.allCases : declared).filter(available.contains)
            guard !wanted.isEmpty else {
                return refuse(
                    "the Service needs \(declared.map(\.rawValue).joined(separator: " or ")) and the pool has \(has)"
                )
            }
            return .success(wanted)
        }
    }

    /// The first address of `family` in `pool` that `user` may use: ranges in configuration
    /// order, each as its minimal CIDRs, each from its first address up (rule 7).
    private func firstUsableAddress(
        for user: AddressUser,
        family: IPFamily,
        in pool: AddressPool,
        fromStart: Bool = false
    ) -> (IPAddress?, SharingConflict?) {
        // A Service without a sharing key can use only addresses nobody uses, and addresses
        // only gain users during a run: it may start where the last such scan found every
        // earlier address taken. This keeps allocating N Services linear instead of
        // quadratic. Services with a key may share, so they scan from the start.
        let cursorKey = "\(pool.name)|\(family.rawValue)"
        let canSkipUsed = user.sharingKey == nil && !fromStart
        let start = canSkipUsed ? (scanCursors.positions[cursorKey] ?? ScanPosition()) : ScanPosition()
        var firstConflict: SharingConflict?
        var allUsedSoFar = true
        for rangeIndex in start.range..<pool.ranges.count where pool.ranges[rangeIndex].family == family {
            let cidrs = pool.ranges[rangeIndex].cidrs
            let firstCIDR = rangeIndex == start.range ? start.cidr : 0
            for cidrIndex in firstCIDR..<cidrs.count {
                let cidr = cidrs[cidrIndex]
                var address =
                    rangeIndex == start.range && cidrIndex == start.cidr ? (start.address ?? cidr.first) : cidr.first
                while true {
                    if !(pool.avoidBuggyIPs && address.confusesBuggyFirmware) {
                        let isUsed = users[address].map { !$0.isEmpty } ?? false
                        if canSkipUsed && allUsedSoFar && !isUsed {
                            scanCursors.positions[cursorKey] = ScanPosition(
                                range: rangeIndex,
                                cidr: cidrIndex,
                                address: address
                            )
                        }
                        if !isUsed { allUsedSoFar = false }
                        if canSkipUsed && isUsed {
                            if firstConflict == nil { firstConflict = conflict(for: user, at: address) }
                        } else {
                            guard let conflict = conflict(for: user, at: address) else {
                                return (address, firstConflict)
                            }
                            firstConflict = firstConflict ?? conflict
                        }
                    }
                    guard address < cidr.last, let next = address.successor else { break }
                    address = next
                }
            }
        }
        if canSkipUsed && start != ScanPosition() {
            // The pool is exhausted: scan again from the start, only to name the first conflict.
            return firstUsableAddress(for: user, family: family, in: pool, fromStart: true)
        }
        return (nil, firstConflict)
    }

    /// Where a scan for a Service without a sharing key may start in a pool.
    struct ScanPosition: Equatable {
        var range = 0
        var cidr = 0
        var address: IPAddress?
    }

    /// Scan starts per pool and family; a class so non-mutating lookups can advance them.
    final class ScanCursors {
        var positions: [String: ScanPosition] = [:]
    }

    // MARK: Shared checks

    /// Rule 2: the Service's specific addresses (empty for none), or why the request is invalid.
    private func requestedIPs(of service: ServiceRequest) -> Result<[IPAddress], AllocationFailure> {
        func fail(_ rule: AllocationRule, _ error: String) -> Result<[IPAddress], AllocationFailure> {
            .failure(
                AllocationFailure(service: service.key, error: error, refusals: [PoolRefusal(pool: nil, rule: rule)])
            )
        }
        let texts: [String]
        switch service.requestedAddresses {
        case .none:
            return .success([])
        case .conflicting(let annotation, let loadBalancerIP):
            return fail(
                .conflictingRequest,
                "service can not have both metallb.io/loadBalancerIPs (\"\(annotation)\") "
                    + "and spec.loadBalancerIP (\"\(loadBalancerIP)\")"
            )
        case .addresses(let requested):
            texts = requested
        }
        var ips: [IPAddress] = []
        for text in texts {
            guard let ip = IPAddress(text) else { return fail(.requestedIPs, "invalid IP \"\(text)\" requested") }
            ips.append(ip)
        }
        let quoted = ips.map { "\"\($0)\"" }.joined(separator: ", ")
        if ips.count > 2 { return fail(.requestedIPs, "too many IPs requested (\(quoted)): at most one per family") }
        if ips.count == 2 && ips[0].family == ips[1].family {
            return fail(.requestedIPs, "requested IPs \(quoted) are both \(ips[0].family): at most one per family")
        }
        let declared = declaredFamilies(of: service)
        let families = ips.map(\.family)
        switch service.ipFamilyPolicy {
        case .singleStack:
            if ips.count == 2 {
                return fail(.requestedIPs, "2 IPs requested (\(quoted)) but ipFamilyPolicy is SingleStack")
            }
            if let primary = declared.first, families[0] != primary {
                return fail(
                    .requestedIPs,
                    "requested IP \(quoted) is \(families[0]) but the Service's ipFamilies is [\(primary)]"
                )
            }
        case .requireDualStack:
            if ips.count != 2 {
                return fail(
                    .requestedIPs,
                    "RequireDualStack needs one IPv4 and one IPv6 IP, but \(quoted) was requested"
                )
            }
        case .preferDualStack:
            if let stray = ips.first(where: { !declared.isEmpty && !declared.contains($0.family) }) {
                let list = declared.map(\.rawValue).joined(separator: ", ")
                return fail(
                    .requestedIPs,
                    "requested IP \"\(stray)\" is \(stray.family) but the Service's ipFamilies is [\(list)]"
                )
            }
        }
        return .success(ips)
    }

    private func declaredFamilies(of service: ServiceRequest) -> [IPFamily] {
        var seen: Set<IPFamily> = []
        return service.ipFamilies.filter { seen.insert($0).inserted }
    }

    /// Rule 6: why `pool` does not accept `service`, or nil when it does.
    private func refusal(of pool: AddressPool, for service: ServiceRequest) -> PoolRefusal? {
        guard let allocation = pool.serviceAllocation else { return nil }
        if !allocation.allows(namespace: service.namespace, labels: namespaceLabels[service.namespace] ?? [:]) {
            return PoolRefusal(
                pool: pool.name,
                rule: .namespaces,
                detail: "namespace \"\(service.namespace)\" is not allowed"
            )
        }
        if !allocation.allows(serviceLabels: service.labels) {
            let labels = service.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                separator: ","
            )
            return PoolRefusal(pool: pool.name, rule: .serviceSelectors, detail: "labels {\(labels)} match no selector")
        }
        return nil
    }

    /// Rule 8: why `user` may not use `address` as it is used now, or nil.
    private func conflict(for user: AddressUser, at address: IPAddress) -> SharingConflict? {
        for other in users[address, default: []] where other.service != user.service {
            if let conflict = user.conflict(joining: other, on: address) { return conflict }
        }
        return nil
    }

    private mutating func admit(
        _ service: ServiceRequest,
        ips: [IPAddress],
        pool: AddressPool,
        previous: AllocationLock.Entry?
    ) {
        let user = AddressUser(service)
        for ip in ips { users[ip, default: []].append(user) }
        allocations.append(Allocation(service: service.key, ips: ips, pool: pool.name, isNew: previous?.ips != ips))
    }
}
