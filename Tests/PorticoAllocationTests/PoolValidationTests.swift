import PorticoAllocation
import Testing

@Suite struct PoolValidationTests {
    @Test func aValidConfigurationHasNoProblems() {
        let pools = [
            AddressPool(name: "lan", addresses: ["10.0.20.200-10.0.20.220", "2001:db8:20::/120"]),
            AddressPool(name: "dmz", addresses: ["10.0.30.0/24"], autoAssign: false, avoidBuggyIPs: true),
        ]
        #expect(AddressPool.validate(pools).isEmpty)
    }

    @Test func everyProblemNamesThePoolAndTheField() {
        let pools = [
            AddressPool(name: "lan", addresses: ["10.0.20.200-10.0.20.220"]),
            AddressPool(name: "lan", addresses: ["10.0.21.0/24"]),
            AddressPool(name: "empty", addresses: []),
            AddressPool(
                name: "bad",
                addresses: ["10.0.22.9-10.0.22.1", "10.0.23.1-2001:db8::1", "10.0.24.x/24", "10.0.20.216/29"]
            ),
            AddressPool(name: "twice", addresses: ["10.0.25.0/24", "10.0.25.128/25"]),
            AddressPool(name: "", addresses: ["10.0.26.0/24"]),
        ]
        let problems = AddressPool.validate(pools)
        #expect(
            problems.map(\.description) == [
                "pool \"lan\": metadata.name: duplicate pool name \"lan\"",
                "pool \"empty\": spec.addresses: the pool has no addresses",
                "pool \"bad\": spec.addresses[0]: invalid range \"10.0.22.9-10.0.22.1\": start 10.0.22.9 is after end 10.0.22.1",
                "pool \"bad\": spec.addresses[1]: invalid range \"10.0.23.1-2001:db8::1\": start is IPv4 but end is IPv6",
                "pool \"bad\": spec.addresses[2]: invalid CIDR or range \"10.0.24.x/24\": write a CIDR (10.0.0.0/24) or a range (10.0.20.200-10.0.20.220)",
                "pool \"bad\": spec.addresses[3]: \"10.0.20.216/29\" overlaps with already defined \"10.0.20.200-10.0.20.220\" (pool \"lan\" spec.addresses[0])",
                "pool \"twice\": spec.addresses[1]: \"10.0.25.128/25\" overlaps with already defined \"10.0.25.0/24\" (spec.addresses[0] of the same pool)",
                "pool \"\": metadata.name: the pool has no name",
            ]
        )
        #expect(problems[0].pool == "lan" && problems[0].field == "metadata.name")
    }

    @Test func poolsOfDifferentFamiliesNeverOverlap() {
        let pools = [
            AddressPool(name: "v4", addresses: ["0.0.0.0/0"]),
            AddressPool(name: "v6", addresses: ["::/0"]),
        ]
        #expect(AddressPool.validate(pools).isEmpty)
    }

    @Test func labelSelectorOperatorsNeedTheRightValues() {
        let allocation = ServiceAllocation(
            namespaceSelectors: [
                LabelSelector(matchExpressions: [.init(key: "team", operator: .in, values: [])])
            ],
            serviceSelectors: [
                LabelSelector(matchExpressions: [
                    .init(key: "tier", operator: .exists),
                    .init(key: "tier", operator: .doesNotExist, values: ["x"]),
                ])
            ]
        )
        let problems = AddressPool.validate([
            AddressPool(name: "p", addresses: ["10.0.0.0/24"], serviceAllocation: allocation)
        ])
        #expect(
            problems.map(\.description) == [
                "pool \"p\": spec.serviceAllocation.namespaceSelectors[0].matchExpressions[0]: key \"team\": operator In needs at least one value",
                "pool \"p\": spec.serviceAllocation.serviceSelectors[0].matchExpressions[1]: key \"tier\": operator DoesNotExist takes no values",
            ]
        )
    }
}

@Suite struct LabelSelectorTests {
    let labels = ["app": "dns", "tier": "edge"]

    @Test func matchLabelsAndExpressions() {
        #expect(LabelSelector().matches([:]))
        #expect(LabelSelector(matchLabels: ["app": "dns"]).matches(labels))
        #expect(!LabelSelector(matchLabels: ["app": "web"]).matches(labels))
        #expect(!LabelSelector(matchLabels: ["app": "dns", "zone": "a"]).matches(labels))
        #expect(
            LabelSelector(matchExpressions: [.init(key: "tier", operator: .in, values: ["edge", "core"])]).matches(
                labels
            )
        )
        #expect(!LabelSelector(matchExpressions: [.init(key: "tier", operator: .in, values: ["core"])]).matches(labels))
        #expect(!LabelSelector(matchExpressions: [.init(key: "zone", operator: .in, values: ["a"])]).matches(labels))
        #expect(LabelSelector(matchExpressions: [.init(key: "zone", operator: .notIn, values: ["a"])]).matches(labels))
        #expect(
            !LabelSelector(matchExpressions: [.init(key: "app", operator: .notIn, values: ["dns"])]).matches(labels)
        )
        #expect(LabelSelector(matchExpressions: [.init(key: "app", operator: .exists)]).matches(labels))
        #expect(!LabelSelector(matchExpressions: [.init(key: "zone", operator: .exists)]).matches(labels))
        #expect(LabelSelector(matchExpressions: [.init(key: "zone", operator: .doesNotExist)]).matches(labels))
        #expect(!LabelSelector(matchExpressions: [.init(key: "app", operator: .doesNotExist)]).matches(labels))
        #expect(
            !LabelSelector(
                matchLabels: ["app": "dns"],
                matchExpressions: [.init(key: "tier", operator: .notIn, values: ["edge"])]
            ).matches(labels)
        )
    }
}
