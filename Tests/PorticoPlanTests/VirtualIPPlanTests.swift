import Foundation
import PorticoModel
import PorticoPlan
import PorticoVIP
import Testing

private let manifests = """
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: lan, namespace: metallb-system}
    spec:
      addresses: [10.0.20.200-10.0.20.210]
    ---
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: dmz, namespace: metallb-system, labels: {zone: dmz}}
    spec:
      addresses: [10.0.30.1-10.0.30.5]
    ---
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: quiet, namespace: metallb-system}
    spec:
      addresses: [10.0.40.1-10.0.40.5]
    ---
    apiVersion: metallb.io/v1beta1
    kind: L2Advertisement
    metadata: {name: lan, namespace: metallb-system}
    spec:
      ipAddressPools: [lan]
    ---
    apiVersion: metallb.io/v1beta1
    kind: L2Advertisement
    metadata: {name: dmz, namespace: metallb-system}
    spec:
      ipAddressPoolSelectors: [{matchLabels: {zone: dmz}}]
      nodeSelectors: [{matchLabels: {edge: "true"}}]
      interfaces: [eth1, eth2]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
      annotations: {metallb.io/loadBalancerIPs: 10.0.20.200, metallb.io/allow-shared-ip: k}
    spec:
      type: LoadBalancer
      ports: [{port: 80}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: dns
      annotations: {metallb.io/loadBalancerIPs: 10.0.20.200, metallb.io/allow-shared-ip: k}
    spec:
      type: LoadBalancer
      ports: [{port: 53, protocol: UDP}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: pinned
      annotations:
        metallb.io/loadBalancerIPs: 10.0.20.201
        portico.dev/vrrp-vrid: "77"
        portico.dev/vrrp-preferred-node: node-b
    spec:
      type: LoadBalancer
      ports: [{port: 80}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: edge
      annotations: {metallb.io/loadBalancerIPs: 10.0.30.1}
    spec:
      type: LoadBalancer
      ports: [{port: 443}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: silent
      annotations: {metallb.io/loadBalancerIPs: 10.0.40.1}
    spec:
      type: LoadBalancer
      ports: [{port: 443}]
    """

private func groups(_ node: VirtualIPNode) -> (Plan, Manifests) {
    let loaded = ManifestLoader.load(texts: [("vip.yaml", manifests)], now: 1_800_000_000)
    var plan = PlanBuilder.plan(for: loaded)
    VirtualIPPlanner.addVirtualIPs(to: &plan, manifests: loaded, node: node)
    return (plan, loaded)
}

@Suite("Plan: virtual IPs of a node")
struct VirtualIPPlanTests {
    @Test func announcedAddressesBecomeOneRouterEachWithSharedIPsTogether() {
        let (plan, _) = groups(VirtualIPNode(name: "node-a", interface: "eth0"))
        #expect(plan.isValid, "\(plan.diagnostics)")
        // 10.0.40.1's pool has no L2Advertisement; 10.0.30.1's does not select this node.
        #expect(plan.virtualIPs.map(\.addresses) == [["10.0.20.200"], ["10.0.20.201"]])
        let shared = plan.virtualIPs[0]
        #expect(shared.services == ["default/dns", "default/web"])
        #expect(shared.interface == "eth0")
        #expect(shared.announcedBy == ["metallb-system/lan"])
        #expect(shared.family == "IPv4")
        #expect(shared.advertisementIntervalMilliseconds == 1000)
        #expect(plan.virtualIPs[1].virtualRouterID == 77)
        let document = PlanDocument(plan)
        #expect(document.node == "node-a")
        #expect(document.virtualIPs == plan.virtualIPs)
        #expect(PlanText.render(plan).contains("Virtual IPs on node node-a (2)"))
    }

    @Test func vridsAreDeterministicAndOverridable() {
        let (first, _) = groups(VirtualIPNode(name: "node-a", interface: "eth0"))
        let (second, _) = groups(VirtualIPNode(name: "node-b", interface: "eth0"))
        #expect(first.virtualIPs.map(\.virtualRouterID) == second.virtualIPs.map(\.virtualRouterID))
        let address = VRRPAddress("10.0.20.200")!
        #expect(first.virtualIPs[0].virtualRouterID == Int(1 + VirtualRouterPlacement.stableHash(address.bytes) % 255))
        let (pinned, _) = groups(VirtualIPNode(name: "node-a", interface: "eth0", virtualRouterIDs: ["10.0.20.200": 9]))
        #expect(pinned.virtualIPs[0].virtualRouterID == 9)
    }

    @Test func nodeSelectorsAndInterfacesChooseWhatThisNodeAnnounces() {
        let (edge, _) = groups(VirtualIPNode(name: "node-e", labels: ["edge": "true"], interface: nil))
        let dmz = edge.virtualIPs.first { $0.addresses == ["10.0.30.1"] }
        #expect(dmz?.interface == "eth1")  // the first listed interface
        #expect(dmz?.services == ["default/edge"])
        // Without --vrrp-interface the lan pool has no interface: listed, but marked.
        #expect(edge.virtualIPs.first { $0.addresses == ["10.0.20.200"] }?.interface == "")
        let (onEth2, _) = groups(VirtualIPNode(name: "node-e", labels: ["edge": "true"], interface: "eth2"))
        #expect(onEth2.virtualIPs.first { $0.addresses == ["10.0.30.1"] }?.interface == "eth2")
        let (onEth0, _) = groups(VirtualIPNode(name: "node-e", labels: ["edge": "true"], interface: "eth0"))
        #expect(!onEth0.virtualIPs.contains { $0.addresses == ["10.0.30.1"] })
    }

    @Test func prioritiesSpreadByHashAndHonourOverrides() {
        let nodes = ["node-a", "node-b", "node-c"]
        let address = VRRPAddress("10.0.20.200")!
        let derived = nodes.map {
            VirtualIPPlanner.priority(of: VirtualIPNode(name: $0), for: address, preferredNode: nil)
        }
        #expect(derived.allSatisfy { (1...250).contains($0) })
        #expect(Set(derived).count > 1)
        // Deterministic.
        #expect(
            VirtualIPPlanner.priority(of: VirtualIPNode(name: "node-a"), for: address, preferredNode: nil) == derived[0]
        )
        // Ranked over a known node list: distinct, the top one 250.
        let ranked = nodes.map {
            VirtualIPPlanner.priority(of: VirtualIPNode(name: $0, nodes: nodes), for: address, preferredNode: nil)
        }
        #expect(Set(ranked).count == 3)
        #expect(ranked.max() == 250)
        // Different addresses prefer different nodes somewhere among a few addresses.
        let winners = Set(
            (1...20).map { index -> String in
                let candidate = VRRPAddress("10.0.20.\(index)")!
                return nodes.max {
                    VirtualIPPlanner.priority(
                        of: VirtualIPNode(name: $0, nodes: nodes),
                        for: candidate,
                        preferredNode: nil
                    )
                        < VirtualIPPlanner.priority(
                            of: VirtualIPNode(name: $1, nodes: nodes),
                            for: candidate,
                            preferredNode: nil
                        )
                }!
            }
        )
        #expect(winners.count == 3)
        // Overrides.
        #expect(
            VirtualIPPlanner.priority(of: VirtualIPNode(name: "node-a", priority: 42), for: address, preferredNode: nil)
                == 42
        )
        let (planB, _) = groups(VirtualIPNode(name: "node-b", interface: "eth0"))
        #expect(planB.virtualIPs.first { $0.addresses == ["10.0.20.201"] }?.priority == 254)
        let (planA, _) = groups(VirtualIPNode(name: "node-a", interface: "eth0"))
        #expect((planA.virtualIPs.first { $0.addresses == ["10.0.20.201"] }?.priority ?? 255) <= 250)
    }

    @Test func badVRIDAnnotationIsAnError() {
        let text = manifests.replacingOccurrences(
            of: "portico.dev/vrrp-vrid: \"77\"",
            with: "portico.dev/vrrp-vrid: \"300\""
        )
        let loaded = ManifestLoader.load(texts: [("vip.yaml", text)], now: 1_800_000_000)
        var plan = PlanBuilder.plan(for: loaded)
        VirtualIPPlanner.addVirtualIPs(to: &plan, manifests: loaded, node: VirtualIPNode(name: "n", interface: "eth0"))
        #expect(plan.diagnostics.contains { $0.severity == .error && $0.message.contains("portico.dev/vrrp-vrid") })
    }
}
