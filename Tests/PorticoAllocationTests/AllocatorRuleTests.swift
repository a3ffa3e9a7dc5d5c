import PorticoAllocation
import Testing

/// Rules 1-10 of the allocation spec, one group each.
@Suite struct AllocatorRuleTests {
    let lan = AddressPool(name: "lan", addresses: ["10.0.20.200-10.0.20.220"])

    // MARK: Rule 1

    @Test func rule1NonLoadBalancerServicesGetNothingAndLoseTheirAddress() {
        let previous = AllocationLock(entries: [.init(service: key("web/site"), ips: [ip("10.0.20.205")], pool: "lan")])
        let result = Allocator.allocate(
            services: [service("web/site", isLoadBalancer: false)],
            pools: [lan],
            previous: previous
        )
        #expect(result.allocations.isEmpty)
        #expect(result.failures.isEmpty)
        #expect(
            result.releases == [
                Release(service: key("web/site"), ips: [ip("10.0.20.205")], pool: "lan", reason: .notLoadBalancer)
            ]
        )
        #expect(result.lock.entries.isEmpty)
    }

    @Test func rule1DeletedServicesLoseTheirAddress() {
        let previous = AllocationLock(entries: [.init(service: key("web/gone"), ips: [ip("10.0.20.200")], pool: "lan")])
        let result = Allocator.allocate(services: [service("web/new")], pools: [lan], previous: previous)
        #expect(result.releases.map(\.reason) == [.serviceDeleted])
        #expect(result.ips("web/new") == ["10.0.20.200"])
    }

    // MARK: Rule 2

    @Test func rule2BothAnnotationAndLoadBalancerIPIsAnError() {
        var both = service("web/site")
        both.requestedAddresses = .merge(annotation: "10.0.20.201", loadBalancerIP: "10.0.20.202")
        #expect(both.requestedAddresses == .conflicting(annotation: "10.0.20.201", loadBalancerIP: "10.0.20.202"))
        let result = Allocator.allocate(services: [both], pools: [lan])
        #expect(
            result.reason("web/site")
                == "Failed to allocate IP for \"web/site\": service can not have both metallb.io/loadBalancerIPs "
                + "(\"10.0.20.201\") and spec.loadBalancerIP (\"10.0.20.202\") (rule: use metallb.io/loadBalancerIPs "
                + "or spec.loadBalancerIP, not both)"
        )
        #expect(result.failure(for: key("web/site"))?.refusals.map(\.rule) == [.conflictingRequest])
    }

    @Test func rule2MergeSplitsTheAnnotationAndIgnoresEmptyValues() {
        #expect(RequestedAddresses.merge(annotation: nil, loadBalancerIP: nil) == .none)
        #expect(RequestedAddresses.merge(annotation: "", loadBalancerIP: "") == .none)
        #expect(
            RequestedAddresses.merge(annotation: "10.0.20.201, 2001:db8::1", loadBalancerIP: nil)
                == .addresses(["10.0.20.201", "2001:db8::1"])
        )
        #expect(RequestedAddresses.merge(annotation: nil, loadBalancerIP: "10.0.20.201") == .addresses(["10.0.20.201"]))
    }

    @Test(arguments: [
        (["10.0.20.300"], IPFamilyPolicy.singleStack, [IPFamily](), "invalid IP \"10.0.20.300\" requested"),
        (
            ["10.0.20.201", "2001:db8::1", "2001:db8::2"], .preferDualStack, [],
            "too many IPs requested (\"10.0.20.201\", \"2001:db8::1\", \"2001:db8::2\"): at most one per family"
        ),
        (
            ["10.0.20.201", "10.0.20.202"], .preferDualStack, [],
            "requested IPs \"10.0.20.201\", \"10.0.20.202\" are both IPv4: at most one per family"
        ),
        (
            ["10.0.20.201", "2001:db8::1"], .singleStack, [],
            "2 IPs requested (\"10.0.20.201\", \"2001:db8::1\") but ipFamilyPolicy is SingleStack"
        ),
        (
            ["10.0.20.201"], .singleStack, [.ipv6],
            "requested IP \"10.0.20.201\" is IPv4 but the Service's ipFamilies is [IPv6]"
        ),
        (
            ["10.0.20.201"], .requireDualStack, [.ipv4, .ipv6],
            "RequireDualStack needs one IPv4 and one IPv6 IP, but \"10.0.20.201\" was requested"
        ),
        (
            ["2001:db8::1"], .preferDualStack, [.ipv4],
            "requested IP \"2001:db8::1\" is IPv6 but the Service's ipFamilies is [IPv4]"
        ),
    ])
    func rule2RequestedIPsMustBeWellFormedAndFitTheFamilies(
        requested: [String],
        policy: IPFamilyPolicy,
        families: [IPFamily],
        error: String
    ) {
        let dual = AddressPool(name: "dual", addresses: ["10.0.20.200-10.0.20.220", "2001:db8::/120"])
        let result = Allocator.allocate(
            services: [service("web/site", ips: requested, families: families, familyPolicy: policy)],
            pools: [dual]
        )
        let failure = result.failure(for: key("web/site"))
        #expect(failure?.error == error)
        #expect(failure?.refusals.map(\.rule) == [.requestedIPs])
        #expect(result.allocations.isEmpty)
    }

    // MARK: Rule 3

    @Test func rule3RequestedIPsComeFromTheOwningPoolEvenWithoutAutoAssign() {
        let reserved = AddressPool(name: "reserved", addresses: ["10.0.30.10/32"], autoAssign: false)
        let result = Allocator.allocate(services: [service("web/site", ips: ["10.0.30.10"])], pools: [lan, reserved])
        #expect(
            result.allocation(for: key("web/site"))
                == Allocation(service: key("web/site"), ips: [ip("10.0.30.10")], pool: "reserved", isNew: true)
        )
    }

    @Test func rule3AnIPOutsideEveryPoolIsNotAllowed() {
        let result = Allocator.allocate(services: [service("web/site", ips: ["10.9.9.9"])], pools: [lan])
        #expect(
            result.reason("web/site")
                == "Failed to allocate IP for \"web/site\": \"10.9.9.9\" is not allowed in config "
                + "(rule: a requested IP must be in a pool's spec.addresses)"
        )
    }

    @Test func rule3AvoidBuggyIPsPoolsDoNotOwnDotZeroAndDot255() {
        let buggy = AddressPool(name: "old", addresses: ["10.0.40.0/24"], avoidBuggyIPs: true)
        let result = Allocator.allocate(
            services: [
                service("a/zero", ips: ["10.0.40.0"]), service("a/last", ips: ["10.0.40.255"]),
                service("a/one", ips: ["10.0.40.1"]),
            ],
            pools: [buggy]
        )
        #expect(result.ips("a/one") == ["10.0.40.1"])
        #expect(
            result.reason("a/zero")
                == "Failed to allocate IP for \"a/zero\": \"10.0.40.0\" is not allowed in config "
                + "(pool \"old\", rule: a pool with avoidBuggyIPs does not hand out IPv4 addresses ending in .0 or .255)"
        )
        #expect(result.failure(for: key("a/last"))?.refusals.map(\.rule) == [.avoidBuggyIPs])
    }

    @Test func rule3RequestedPoolMustOwnTheRequestedIPs() {
        let other = AddressPool(name: "other", addresses: ["10.0.30.0/24"])
        let result = Allocator.allocate(
            services: [service("web/site", ips: ["10.0.20.201"], pool: "other")],
            pools: [lan, other]
        )
        #expect(
            result.reason("web/site")
                == "Failed to allocate IP for \"web/site\": \"10.0.20.201\" is not in the requested pool \"other\" "
                + "(pool \"lan\", rule: the requested IPs must belong to the pool named by metallb.io/address-pool: "
                + "the IPs belong to pool \"lan\")"
        )
        let matching = Allocator.allocate(
            services: [service("web/site", ips: ["10.0.20.201"], pool: "lan")],
            pools: [lan, other]
        )
        #expect(matching.ips("web/site") == ["10.0.20.201"])
    }

    @Test func rule3RequestedIPsMustBeInOnePoolAndThePoolMustAcceptTheService() {
        let v6 = AddressPool(name: "v6", addresses: ["2001:db8::/120"])
        let split = Allocator.allocate(
            services: [service("web/site", ips: ["10.0.20.201", "2001:db8::1"], familyPolicy: .requireDualStack)],
            pools: [lan, v6]
        )
        #expect(
            split.failure(for: key("web/site"))?.error
                == "requested IPs \"10.0.20.201\", \"2001:db8::1\" are not in one pool"
        )
        #expect(
            split.failure(for: key("web/site"))?.refusals.first?.detail
                == "\"10.0.20.201\" is in pool \"lan\", \"2001:db8::1\" is in pool \"v6\""
        )

        var onlyDNS = lan
        onlyDNS.serviceAllocation = ServiceAllocation(namespaces: ["dns"])
        let refused = Allocator.allocate(services: [service("web/site", ips: ["10.0.20.201"])], pools: [onlyDNS])
        #expect(
            refused.reason("web/site")
                == "Failed to allocate IP for \"web/site\": pool \"lan\" is not compatible with the service (pool \"lan\", "
                + "rule: serviceAllocation.namespaces and namespaceSelectors must include the Service's namespace: "
                + "namespace \"web\" is not allowed)"
        )
    }

    // MARK: Rule 4

    @Test func rule4NamedPoolIgnoresAutoAssignButChecksCompatibility() {
        var manual = AddressPool(name: "manual", addresses: ["10.0.30.0/30"], autoAssign: false)
        let result = Allocator.allocate(
            services: [service("web/site", pool: "manual"), service("web/other")],
            pools: [lan, manual]
        )
        #expect(result.allocation(for: key("web/site"))?.pool == "manual")
        #expect(result.ips("web/site") == ["10.0.30.0"])
        #expect(result.ips("web/other") == ["10.0.20.200"])

        manual.serviceAllocation = ServiceAllocation(serviceSelectors: [LabelSelector(matchLabels: ["tier": "edge"])])
        let refused = Allocator.allocate(
            services: [service("web/site", pool: "manual", labels: ["tier": "core"])],
            pools: [manual]
        )
        #expect(
            refused.reason("web/site")
                == "Failed to allocate IP for \"web/site\": no available IPs (pool \"manual\", rule: one of "
                + "serviceAllocation.serviceSelectors must match the Service's labels: labels {tier=core} match no selector)"
        )
    }

    @Test func rule4UnknownPoolIsAnError() {
        let result = Allocator.allocate(services: [service("web/site", pool: "nope")], pools: [lan])
        #expect(
            result.reason("web/site")
                == "Failed to allocate IP for \"web/site\": unknown pool \"nope\" (pool \"nope\", rule: "
                + "metallb.io/address-pool must name a configured pool)"
        )
        let withIP = Allocator.allocate(
            services: [service("web/site", ips: ["10.0.20.201"], pool: "nope")],
            pools: [lan]
        )
        #expect(withIP.failure(for: key("web/site"))?.error == "unknown pool \"nope\"")
    }

    // MARK: Rule 5

    @Test func rule5PrioritisedPoolsFirstUnsetPriorityLastThenGeneralPools() {
        func pool(_ name: String, _ cidr: String, priority: Int?) -> AddressPool {
            AddressPool(
                name: name,
                addresses: [cidr],
                serviceAllocation: priority.map { ServiceAllocation(priority: $0) }
            )
        }
        let pools = [
            pool("a-general", "10.0.1.0/31", priority: nil),
            pool("b-unset", "10.0.2.0/31", priority: 0),
            pool("c-second", "10.0.3.0/31", priority: 2),
            pool("d-first", "10.0.4.0/31", priority: 1),
        ]
        let services = (1...9).map { service("ns/s\($0)") }
        let result = Allocator.allocate(services: services, pools: pools.reversed())
        #expect(
            (1...8).map { result.allocation(for: key("ns/s\($0)"))?.pool } == [
                "d-first", "d-first", "c-second", "c-second", "b-unset", "b-unset", "a-general", "a-general",
            ]
        )
        #expect(result.failure(for: key("ns/s9"))?.error == "no available IPs")
        #expect(
            result.failure(for: key("ns/s9"))?.refusals.map(\.pool) == ["d-first", "c-second", "b-unset", "a-general"]
        )
    }

    @Test func rule5PoolsWithServiceAllocationAreNeverAGeneralFallback() {
        let dnsOnly = AddressPool(
            name: "dns",
            addresses: ["10.0.5.0/24"],
            serviceAllocation: ServiceAllocation(namespaces: ["dns"])
        )
        let tiny = AddressPool(name: "tiny", addresses: ["10.0.6.1/32"])
        let manual = AddressPool(name: "manual", addresses: ["10.0.7.0/24"], autoAssign: false)
        let result = Allocator.allocate(
            services: [service("dns/a"), service("web/a"), service("web/b")],
            pools: [dnsOnly, tiny, manual]
        )
        #expect(result.allocation(for: key("dns/a"))?.pool == "dns")
        #expect(result.ips("web/a") == ["10.0.6.1"])
        #expect(
            result.reason("web/b")
                == "Failed to allocate IP for \"web/b\": no available IPs ("
                + "pool \"dns\", rule: serviceAllocation.namespaces and namespaceSelectors must include the Service's "
                + "namespace: namespace \"web\" is not allowed; "
                + "pool \"manual\", rule: a pool with autoAssign: false is used only when a Service requests its IPs or names it; "
                + "pool \"tiny\", rule: every address is taken and none can be shared with this Service: first conflict: "
                + "\"10.0.6.1\": existing service \"web/a\" does not allow sharing)"
        )
    }

    @Test func rule5NoPoolsAtAll() {
        let result = Allocator.allocate(services: [service("web/site")], pools: [])
        #expect(
            result.reason("web/site")?.hasPrefix("Failed to allocate IP for \"web/site\": no available IPs") == true
        )
        #expect(result.failure(for: key("web/site"))?.refusals.first?.detail == "no address pool is configured")
    }

    // MARK: Rule 6

    @Test func rule6NamespacesAndNamespaceSelectors() {
        let allocation = ServiceAllocation(
            namespaces: ["dns"],
            namespaceSelectors: [
                LabelSelector(matchLabels: ["team": "infra"]),
                LabelSelector(matchLabels: ["kubernetes.io/metadata.name": "mail"]),
            ]
        )
        let restricted = AddressPool(name: "infra", addresses: ["10.0.8.0/24"], serviceAllocation: allocation)
        let result = Allocator.allocate(
            services: [service("dns/a"), service("monitoring/a"), service("mail/a"), service("web/a")],
            pools: [restricted],
            namespaceLabels: ["monitoring": ["team": "infra"], "web": ["team": "apps"]]
        )
        #expect(result.allocation(for: key("dns/a"))?.pool == "infra")
        #expect(result.allocation(for: key("monitoring/a"))?.pool == "infra")
        #expect(result.allocation(for: key("mail/a"))?.pool == "infra")
        #expect(result.failure(for: key("web/a"))?.refusals.map(\.rule) == [.namespaces])
    }

    @Test func rule6SelectorsThatMatchNoNamespaceKeepThePoolClosed() {
        let allocation = ServiceAllocation(namespaceSelectors: [LabelSelector(matchLabels: ["team": "nobody"])])
        let restricted = AddressPool(name: "infra", addresses: ["10.0.8.0/24"], serviceAllocation: allocation)
        let result = Allocator.allocate(services: [service("web/a")], pools: [restricted])
        #expect(result.failure(for: key("web/a"))?.refusals.map(\.rule) == [.namespaces])
    }

    @Test func rule6OneServiceSelectorMustMatch() {
        let allocation = ServiceAllocation(serviceSelectors: [
            LabelSelector(matchLabels: ["tier": "edge"]),
            LabelSelector(matchExpressions: [.init(key: "dns", operator: .exists)]),
        ])
        let edge = AddressPool(name: "edge", addresses: ["10.0.9.0/24"], serviceAllocation: allocation)
        let result = Allocator.allocate(
            services: [
                service("a/edge", labels: ["tier": "edge"]), service("a/dns", labels: ["dns": ""]),
                service("a/web", labels: ["tier": "web"]),
            ],
            pools: [edge]
        )
        #expect(result.ips("a/dns") == ["10.0.9.0"])
        #expect(result.ips("a/edge") == ["10.0.9.1"])
        #expect(result.failure(for: key("a/web"))?.refusals.map(\.rule) == [.serviceSelectors])
    }

    // MARK: Rule 7

    @Test func rule7WalksRangesInConfigOrderFromTheirFirstAddress() {
        let pool = AddressPool(name: "p", addresses: ["10.0.50.10-10.0.50.11", "10.0.49.0/31"])
        let result = Allocator.allocate(services: (1...5).map { service("ns/s\($0)") }, pools: [pool])
        #expect(
            (1...4).map { result.ips("ns/s\($0)")?.first } == ["10.0.50.10", "10.0.50.11", "10.0.49.0", "10.0.49.1"]
        )
        #expect(result.failure(for: key("ns/s5"))?.refusals.map(\.rule) == [.poolExhausted])
    }

    @Test func rule7AvoidBuggyIPsSkipsDotZeroAndDot255() {
        let pool = AddressPool(name: "p", addresses: ["10.0.0.254-10.0.1.1"], avoidBuggyIPs: true)
        let plain = AddressPool(name: "p", addresses: ["10.0.0.254-10.0.1.1"])
        let services = (1...3).map { service("ns/s\($0)") }
        let avoiding = Allocator.allocate(services: services, pools: [pool])
        #expect(services.map { avoiding.ips($0.key.description)?.first } == ["10.0.0.254", "10.0.1.1", nil])
        let notAvoiding = Allocator.allocate(services: services, pools: [plain])
        #expect(
            services.map { notAvoiding.ips($0.key.description)?.first } == ["10.0.0.254", "10.0.0.255", "10.0.1.0"]
        )
    }

    @Test func rule7DualStackTakesOneOfEachFamilyFromTheSamePool() {
        let v4only = AddressPool(name: "a-v4", addresses: ["10.0.60.0/30"])
        let dual = AddressPool(name: "b-dual", addresses: ["2001:db8::10/126", "10.0.61.0/30"])
        let result = Allocator.allocate(
            services: [
                service("ns/require", families: [.ipv6, .ipv4], familyPolicy: .requireDualStack),
                service("ns/prefer", familyPolicy: .preferDualStack),
                service("ns/single"),
                service("ns/single6", families: [.ipv6]),
            ],
            pools: [dual, v4only]
        )
        #expect(result.ips("ns/require") == ["2001:db8::10", "10.0.61.0"])
        #expect(result.allocation(for: key("ns/require"))?.pool == "b-dual")
        // PreferDualStack takes what the first pool offers: a-v4 has only IPv4.
        #expect(result.ips("ns/prefer") == ["10.0.60.0"])
        #expect(result.ips("ns/single") == ["10.0.60.1"])
        #expect(result.ips("ns/single6") == ["2001:db8::11"])
    }

    @Test func rule7RequireDualStackNeedsAPoolWithBothFamilies() {
        let result = Allocator.allocate(
            services: [service("ns/require", familyPolicy: .requireDualStack)],
            pools: [lan]
        )
        #expect(
            result.reason("ns/require")
                == "Failed to allocate IP for \"ns/require\": no available IPs (pool \"lan\", rule: the pool must have "
                + "addresses of the Service's IP families: RequireDualStack needs IPv4 and IPv6 and the pool has only IPv4 addresses)"
        )
        let v6 = Allocator.allocate(services: [service("ns/v6", families: [.ipv6])], pools: [lan])
        #expect(
            v6.failure(for: key("ns/v6"))?.refusals.first?.detail
                == "the Service needs IPv6 and the pool has only IPv4 addresses"
        )
    }

    // MARK: Rule 8

    @Test func rule8SharingNeedsTheSameKeyTheSameBackendAndDistinctPorts() {
        let base = service("a/dns-udp", ips: ["10.0.20.200"], sharingKey: "k", ports: [udp(53)])
        let cases: [(ServiceRequest, String?)] = [
            (service("b/dns-tcp", ips: ["10.0.20.200"], sharingKey: "k", ports: [tcp(53)]), nil),
            (
                service("b/other-key", ips: ["10.0.20.200"], sharingKey: "x", ports: [tcp(80)]),
                "\"10.0.20.200\": sharing key \"x\" does not match sharing key \"k\" of \"a/dns-udp\""
            ),
            (
                service("b/no-key", ips: ["10.0.20.200"], ports: [tcp(80)]),
                "\"10.0.20.200\": new service does not allow sharing, and the address is used by \"a/dns-udp\""
            ),
            (
                service("b/same-port", ips: ["10.0.20.200"], sharingKey: "k", ports: [udp(53)]),
                "port 53/UDP is already in use on \"10.0.20.200\" by \"a/dns-udp\""
            ),
            (
                service(
                    "b/local",
                    ips: ["10.0.20.200"],
                    sharingKey: "k",
                    policy: .local,
                    selector: ["app": "x"],
                    ports: [tcp(1)]
                ),
                "\"10.0.20.200\": backend key \"app=x\" does not match backend key \"\" of \"a/dns-udp\""
            ),
        ]
        for (candidate, expected) in cases {
            let result = Allocator.allocate(services: [base, candidate], pools: [lan])
            #expect(result.ips("a/dns-udp") == ["10.0.20.200"])
            #expect(result.failure(for: candidate.key)?.error == expected, "\(candidate.key)")
            #expect((result.ips(candidate.key.description) == ["10.0.20.200"]) == (expected == nil))
        }
        let unshared = Allocator.allocate(
            services: [
                service("a/first", ips: ["10.0.20.200"]), service("b/second", ips: ["10.0.20.200"], sharingKey: "k"),
            ],
            pools: [lan]
        )
        #expect(
            unshared.failure(for: key("b/second"))?.error
                == "\"10.0.20.200\": existing service \"a/first\" does not allow sharing"
        )
        #expect(unshared.failure(for: key("b/second"))?.conflict?.rule == .sharingKey)
    }

    @Test func rule8LocalServicesShareOnlyWithIdenticalSelectors() {
        let result = Allocator.allocate(
            services: [
                service(
                    "a/http",
                    sharingKey: "k",
                    policy: .local,
                    selector: ["app": "web", "tier": "a"],
                    ports: [tcp(80)]
                ),
                service(
                    "a/https",
                    sharingKey: "k",
                    policy: .local,
                    selector: ["tier": "a", "app": "web"],
                    ports: [tcp(443)]
                ),
                service("a/other", sharingKey: "k", policy: .local, selector: ["app": "db"], ports: [tcp(5432)]),
            ],
            pools: [lan]
        )
        #expect(result.ips("a/http") == ["10.0.20.200"])
        #expect(result.ips("a/https") == ["10.0.20.200"])
        #expect(result.ips("a/other") == ["10.0.20.201"])
    }

    @Test func rule8AutomaticAllocationJoinsACompatibleSharedAddress() {
        let result = Allocator.allocate(
            services: [
                service("a/one", sharingKey: "k", ports: [tcp(80)]),
                service("a/two", sharingKey: "k", ports: [tcp(81)]),
            ],
            pools: [lan]
        )
        #expect(result.ips("a/two") == ["10.0.20.200"])
    }

    @Test func rule8TheOnlyUserOfAnAddressMayChangeItsKey() {
        let previous = AllocationLock(entries: [
            .init(service: key("a/solo"), ips: [ip("10.0.20.207")], pool: "lan", sharingKey: "old", ports: [tcp(80)])
        ])
        let result = Allocator.allocate(
            services: [service("a/solo", sharingKey: "new", ports: [tcp(80)])],
            pools: [lan],
            previous: previous
        )
        #expect(
            result.allocation(for: key("a/solo"))
                == Allocation(service: key("a/solo"), ips: [ip("10.0.20.207")], pool: "lan", isNew: false)
        )
        #expect(result.lock[key("a/solo")]?.sharingKey == "new")
    }

    @Test func rule8AKeyChangeWhileOthersShareReleasesTheServiceThatChanged() {
        let entries: [AllocationLock.Entry] = [
            .init(service: key("a/one"), ips: [ip("10.0.20.200")], pool: "lan", sharingKey: "k", ports: [tcp(80)]),
            .init(service: key("b/two"), ips: [ip("10.0.20.200")], pool: "lan", sharingKey: "k", ports: [tcp(81)]),
        ]
        // a/one sorts first but changed its key; b/two did not change and keeps the address.
        let result = Allocator.allocate(
            services: [
                service("a/one", sharingKey: "z", ports: [tcp(80)]),
                service("b/two", sharingKey: "k", ports: [tcp(81)]),
            ],
            pools: [lan],
            previous: AllocationLock(entries: entries)
        )
        #expect(result.allocation(for: key("b/two"))?.isNew == false)
        #expect(result.ips("a/one") == ["10.0.20.201"])
        #expect(result.allocation(for: key("a/one"))?.isNew == true)
        guard case .sharingConflict(let conflict) = result.releases.first?.reason else {
            Issue.record("expected a sharing release, got \(result.releases)")
            return
        }
        #expect(conflict.kind == .sharingKeyMismatch(requested: "z", existing: "k"))
    }

    // MARK: Rule 9

    @Test func rule9SuccessRecordsThePoolAndFailureUsesMetalLBWording() {
        let small = AddressPool(name: "small", addresses: ["10.0.70.1/32"])
        let result = Allocator.allocate(services: [service("ns/b"), service("ns/a")], pools: [small])
        #expect(
            result.allocations == [Allocation(service: key("ns/a"), ips: [ip("10.0.70.1")], pool: "small", isNew: true)]
        )
        #expect(
            result.reason("ns/b")
                == "Failed to allocate IP for \"ns/b\": no available IPs (pool \"small\", rule: every address is taken and "
                + "none can be shared with this Service: first conflict: \"10.0.70.1\": existing service \"ns/a\" does not allow sharing)"
        )
        #expect(result.lock.entries.map(\.pool) == ["small"])
    }

    @Test func duplicateServicesAreReportedNotAllocated() {
        let result = Allocator.allocate(
            services: [service("ns/a"), service("ns/a", ips: ["10.0.20.210"])],
            pools: [lan]
        )
        #expect(result.allocations.isEmpty)
        #expect(result.failure(for: key("ns/a"))?.error == "the service is defined 2 times")
    }

    // MARK: Rule 10

    @Test func rule10AllocationsSurviveWhileTheirAddressesAreInSomePool() {
        let previous = AllocationLock(entries: [
            .init(service: key("ns/a"), ips: [ip("10.0.20.215")], pool: "lan"),
            .init(service: key("ns/b"), ips: [ip("10.0.20.219")], pool: "lan"),
        ])
        // The pool shrinks to .200-.216 and is renamed: ns/a keeps its address (new pool name), ns/b moves.
        let shrunk = AddressPool(name: "home", addresses: ["10.0.20.200-10.0.20.216"])
        let result = Allocator.allocate(
            services: [service("ns/a"), service("ns/b")],
            pools: [shrunk],
            previous: previous
        )
        #expect(
            result.allocation(for: key("ns/a"))
                == Allocation(service: key("ns/a"), ips: [ip("10.0.20.215")], pool: "home", isNew: false)
        )
        #expect(
            result.allocation(for: key("ns/b"))
                == Allocation(service: key("ns/b"), ips: [ip("10.0.20.200")], pool: "home", isNew: true)
        )
        #expect(
            result.releases == [
                Release(
                    service: key("ns/b"),
                    ips: [ip("10.0.20.219")],
                    pool: "lan",
                    reason: .notInAnyPool([ip("10.0.20.219")])
                )
            ]
        )
        #expect(result.releases[0].reason.description == "\"10.0.20.219\" no longer in any pool")
    }

    @Test func rule10IncompatibleAllocationsAreReleased() {
        let previous = AllocationLock(entries: [.init(service: key("ns/a"), ips: [ip("10.0.20.210")], pool: "lan")])
        let other = AddressPool(name: "other", addresses: ["10.0.30.0/24"])
        var closed = lan
        closed.serviceAllocation = ServiceAllocation(namespaces: ["dns"])
        let cases: [(ServiceRequest, [AddressPool], ReleaseReason)] = [
            (service("ns/a", ips: ["10.0.20.211"]), [lan], .requestedIPsChanged),
            (service("ns/a", pool: "other"), [lan, other], .requestedPoolChanged("other")),
            (service("ns/a", families: [.ipv6]), [lan], .ipFamiliesChanged),
            (
                service("ns/a", ips: ["10.0.20.210", "10.0.20.211"], familyPolicy: .preferDualStack), [lan],
                .invalidRequest
            ),
            (service("ns/a", familyPolicy: .requireDualStack), [lan], .ipFamiliesChanged),
            (
                service("ns/a"), [closed],
                .poolRefusesService(
                    PoolRefusal(pool: "lan", rule: .namespaces, detail: "namespace \"ns\" is not allowed")
                )
            ),
        ]
        for (request, pools, reason) in cases {
            let result = Allocator.allocate(services: [request], pools: pools, previous: previous)
            #expect(result.releases.map(\.reason) == [reason])
        }
        // Same request, unchanged: kept, even when the pool no longer auto-assigns.
        var manual = lan
        manual.autoAssign = false
        let kept = Allocator.allocate(
            services: [service("ns/a", ips: ["10.0.20.210"])],
            pools: [manual],
            previous: previous
        )
        #expect(kept.releases.isEmpty && kept.allocation(for: key("ns/a"))?.isNew == false)
        let keptAuto = Allocator.allocate(services: [service("ns/a")], pools: [manual], previous: previous)
        #expect(keptAuto.ips("ns/a") == ["10.0.20.210"])
    }

    @Test func newServicesNeverTakeAKeptAddress() {
        let previous = AllocationLock(entries: [.init(service: key("z/old"), ips: [ip("10.0.20.200")], pool: "lan")])
        let result = Allocator.allocate(
            services: [service("a/new", ips: ["10.0.20.200"]), service("z/old")],
            pools: [lan],
            previous: previous
        )
        #expect(result.ips("z/old") == ["10.0.20.200"])
        #expect(
            result.failure(for: key("a/new"))?.error
                == "\"10.0.20.200\": existing service \"z/old\" does not allow sharing"
        )
    }
}
