import PorticoAllocation
import Testing

/// The reference homelab's L4 set: everything shares the ingress IP under key `shared`,
/// except the mailserver (Local policy), which MetalLB refuses without saying why.
@Suite struct HomelabTests {
    static let vip = "10.0.20.200"
    let pool = AddressPool(name: "lan", addresses: ["10.0.20.200-10.0.20.220"])

    func shared(_ name: String, _ ports: [ServicePort], policy: ExternalTrafficPolicy = .cluster) -> ServiceRequest {
        service(
            name,
            ips: [Self.vip],
            sharingKey: "shared",
            policy: policy,
            selector: ["app": key(name).name],
            ports: ports
        )
    }

    var clusterServices: [ServiceRequest] {
        [
            shared("ingress-nginx/ingress-nginx-controller", [tcp(80), tcp(443)]),
            shared("pihole/pihole-dns", [udp(53)]),
            shared("dns/bind-internal", [udp(5354)]),
            shared("dns/bind-public", [udp(10053)]),
            shared("dns/dnscrypt-proxy", [udp(5353)]),
            shared("kms/windows-kms", [tcp(1688)]),
            shared("wireguard/wireguard", [udp(51820)]),
        ]
    }

    // Sorts before every Cluster Service, so only the claim-group ordering makes it the one that loses.
    var mailserver: ServiceRequest {
        shared("dmail/mailserver", [tcp(25), tcp(465), tcp(587), tcp(143), tcp(993)], policy: .local)
    }

    @Test func everyClusterServiceSharesTheIngressIP() {
        let result = Allocator.allocate(services: clusterServices, pools: [pool])
        #expect(result.failures.isEmpty)
        #expect(result.allocations.count == 7)
        #expect(result.allocations.allSatisfy { $0.ips == [ip(Self.vip)] && $0.pool == "lan" })
    }

    @Test func theMailserverConflictIsExplained() throws {
        let result = Allocator.allocate(services: [mailserver] + clusterServices, pools: [pool])
        #expect(result.allocations.count == 7)
        let failure = try #require(result.failure(for: key("dmail/mailserver")))
        #expect(
            failure.reason
                == "Failed to allocate IP for \"dmail/mailserver\": \"10.0.20.200\": backend key \"app=mailserver\" does "
                + "not match backend key \"\" of \"dns/bind-internal\" (pool \"lan\", rule: Local-policy services share "
                + "only with services that have the identical selector)"
        )
        let explanation = try #require(failure.explanation)
        #expect(explanation.contains("dmail/mailserver has externalTrafficPolicy: Local"))
        #expect(explanation.contains("Local-policy services share only with services that have the identical selector"))
        #expect(explanation.contains("`externalTrafficPolicy: Cluster` on dmail/mailserver"))
        #expect(explanation.contains("`portico.dev/proxy-protocol: v2`"))
        #expect(explanation.contains("dedicated address"))
    }

    @Test func theMailserverKeepsItsAddressWhenItHeldItFirst() {
        // With the lock saying the mailserver came first, it keeps the IP and the Cluster ones fail instead.
        let previous = AllocationLock(entries: [
            .init(
                service: mailserver.key,
                ips: [ip(Self.vip)],
                pool: "lan",
                sharingKey: "shared",
                backendKey: "app=mailserver",
                ports: mailserver.ports
            )
        ])
        let result = Allocator.allocate(services: clusterServices + [mailserver], pools: [pool], previous: previous)
        #expect(result.allocation(for: mailserver.key)?.isNew == false)
        #expect(result.failures.count == 7)
        let explanation = result.failure(for: key("pihole/pihole-dns"))?.explanation ?? ""
        #expect(
            explanation.hasPrefix(
                "dmail/mailserver has externalTrafficPolicy: Local (selector app=mailserver), so pihole/pihole-dns"
            )
        )
        #expect(explanation.contains("`externalTrafficPolicy: Cluster` on dmail/mailserver"))
    }

    @Test func theMailserverGetsADedicatedAddressOnceItStopsSharing() {
        var dedicated = mailserver
        dedicated.requestedAddresses = .none
        dedicated.sharingKey = nil
        let result = Allocator.allocate(services: clusterServices + [dedicated], pools: [pool])
        #expect(result.failures.isEmpty)
        #expect(result.ips("dmail/mailserver") == ["10.0.20.201"])
    }

    @Test func laterAdditionsShareOrTakeTheirOwnAddress() {
        let later = [
            shared("headscale/headscale", [udp(41641), udp(3479)]),
            shared("proxy/shadowsocks", [tcp(8388), udp(8388)]),
            shared("db/postgresql", [tcp(5432)]),
            service("turn/coturn", ports: [tcp(3478), udp(3478)] + (49152...49252).map(udp)),
        ]
        let first = Allocator.allocate(services: clusterServices, pools: [pool])
        let result = Allocator.allocate(services: clusterServices + later, pools: [pool], previous: first.lock)
        #expect(result.failures.isEmpty)
        #expect(result.ips("headscale/headscale") == [Self.vip])
        #expect(result.ips("proxy/shadowsocks") == [Self.vip])
        #expect(result.ips("db/postgresql") == [Self.vip])
        #expect(result.ips("turn/coturn") == ["10.0.20.201"])
        #expect(result.allocations.filter { !$0.isNew }.count == 7)
        // A second shared Service on 53/UDP, added later, is refused with MetalLB's port wording
        // (it sorts before pihole, but pihole holds the address in the lock).
        let clash = Allocator.allocate(
            services: clusterServices + [shared("dns/second-dns", [udp(53), tcp(53)])],
            pools: [pool],
            previous: first.lock
        )
        #expect(
            clash.reason("dns/second-dns")
                == "Failed to allocate IP for \"dns/second-dns\": port 53/UDP is already in use on \"10.0.20.200\" by "
                + "\"pihole/pihole-dns\" (pool \"lan\", rule: each (protocol, port) pair may be used only once on an address)"
        )
    }
}

@Suite struct SharingExplanationTests {
    let address = ip("10.0.20.200")

    @Test func everyKindOfConflictSaysWhatToChange() throws {
        let cluster = service("a/cluster", sharingKey: "k", ports: [tcp(80)])
        let cases: [(ServiceRequest, ServiceRequest, String)] = [
            (
                service("b/nokey", ports: [tcp(81)]), cluster,
                "b/nokey has no metallb.io/allow-shared-ip annotation, but 10.0.20.200 is already used by a/cluster. "
                    + "Add metallb.io/allow-shared-ip with a/cluster's key to b/nokey, or give b/nokey a dedicated address "
                    + "(request another IP, or remove its loadBalancerIPs)."
            ),
            (
                cluster, service("b/nokey", ports: [tcp(81)]),
                "b/nokey uses 10.0.20.200 without the metallb.io/allow-shared-ip annotation, so no other Service may use it. "
                    + "Add metallb.io/allow-shared-ip with the same key to both Services, or give a/cluster a dedicated "
                    + "address (request another IP, or remove its loadBalancerIPs)."
            ),
            (
                service("b/otherkey", sharingKey: "x", ports: [tcp(81)]), cluster,
                "b/otherkey has sharing key \"x\" but a/cluster uses 10.0.20.200 with sharing key \"k\"; Services share an "
                    + "address only when their metallb.io/allow-shared-ip keys are equal. Use the same key on both, or give "
                    + "b/otherkey a dedicated address (request another IP, or remove its loadBalancerIPs)."
            ),
            (
                service("b/port", sharingKey: "k", ports: [tcp(80)]), cluster,
                "b/port and a/cluster both use 80/TCP on 10.0.20.200; an address carries each (protocol, port) pair once "
                    + "(TCP and UDP on the same port may coexist). Change one of the ports, or give b/port a dedicated "
                    + "address (request another IP, or remove its loadBalancerIPs)."
            ),
        ]
        for (candidate, holder, explanation) in cases {
            let conflict = try #require(candidate.sharingConflict(with: holder, on: address))
            #expect(conflict.explanation == explanation)
        }
        let localA = service("b/local-a", sharingKey: "k", policy: .local, selector: ["app": "a"])
        let localB = service("b/local-b", sharingKey: "k", policy: .local, selector: ["app": "b"])
        let both = try #require(localA.sharingConflict(with: localB, on: address))
        #expect(both.kind == .backendKeyMismatch(requested: "app=a", existing: "app=b"))
        #expect(both.explanation.contains("both have externalTrafficPolicy: Local but select different pods"))
        #expect(both.explanation.contains("make the selectors identical"))
        #expect(service("b/udp", sharingKey: "k", ports: [udp(80)]).sharingConflict(with: cluster, on: address) == nil)
    }
}
