import PorticoAllocation
import Testing

@Suite struct AllocationLockTests {
    static let entries: [AllocationLock.Entry] = [
        .init(
            service: key("pihole/pihole-dns"),
            ips: [ip("10.0.20.200")],
            pool: "lan",
            sharingKey: "shared",
            ports: [udp(53)]
        ),
        .init(
            service: key("dmail/mailserver"),
            ips: [ip("10.0.20.201"), ip("2001:DB8::1")],
            pool: "lan",
            backendKey: "app=mailserver",
            ports: [tcp(587), tcp(25)]
        ),
    ]

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func encodesSortedPrettyJSON() {
        let text = String(decoding: AllocationLock(entries: Self.entries).encode(), as: UTF8.self)
        #expect(
            text == """
                {
                  "allocations" : [
                    {
                      "backendKey" : "app=mailserver",
                      "ips" : [
                        "10.0.20.201",
                        "2001:db8::1"
                      ],
                      "pool" : "lan",
                      "ports" : [
                        "25/TCP",
                        "587/TCP"
                      ],
                      "service" : "dmail/mailserver"
                    },
                    {
                      "ips" : [
                        "10.0.20.200"
                      ],
                      "pool" : "lan",
                      "ports" : [
                        "53/UDP"
                      ],
                      "service" : "pihole/pihole-dns",
                      "sharingKey" : "shared"
                    }
                  ],
                  "version" : 1
                }

                """
        )
    }

    @Test func roundTripsAndIgnoresInputOrder() throws {
        let lock = AllocationLock(entries: Self.entries)
        #expect(try AllocationLock.decode(lock.encode()) == lock)
        #expect(AllocationLock(entries: Self.entries.reversed()).encode() == lock.encode())
        #expect(try AllocationLock.decode(AllocationLock().encode()).entries.isEmpty)
        #expect(lock[key("dmail/mailserver")]?.ips.count == 2)
    }

    @Test func theAllocatorsLockFeedsTheNextRun() throws {
        let pools = [AddressPool(name: "lan", addresses: ["10.0.20.200-10.0.20.220"])]
        let services = [service("a/x"), service("b/y", sharingKey: "k", ports: [tcp(80)])]
        let first = Allocator.allocate(services: services, pools: pools)
        let reread = try AllocationLock.decode(first.lock.encode())
        let second = Allocator.allocate(services: services, pools: pools, previous: reread)
        #expect(second.allocations.map(\.ips) == first.allocations.map(\.ips))
        #expect(second.allocations.allSatisfy { !$0.isNew })
        #expect(second.lock == first.lock)
    }

    @Test(arguments: [
        ("", "allocation lock is not valid: not JSON"),
        ("{\"version\": 1, \"allocations\": [", "allocation lock is not valid: not JSON"),
        ("[]", "allocation lock is not valid: at top level: expected"),
        ("{\"allocations\": []}", "allocation lock has no \"version\""),
        (
            "{\"version\": 2, \"allocations\": []}",
            "allocation lock has version 2, but this Portico reads only version 1"
        ),
        ("{\"version\": 1}", "allocation lock has no \"allocations\""),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": \"10.0.0.1\", \"pool\": \"p\"}]}",
            "allocation lock is not valid: at allocations[0].ips: expected"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"ips\": [\"10.0.0.1\"], \"pool\": \"p\"}]}",
            "allocation lock: allocations[0]: missing \"service\""
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\"}]}",
            "allocation lock: allocations[0]: service \"a\" is not namespace/name"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [], \"pool\": \"p\"}]}",
            "allocation lock: allocations[0]: \"a/b\" has no \"ips\""
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.256\"], \"pool\": \"p\"}]}",
            "allocation lock: allocations[0]: \"10.0.0.256\" is not an IP address"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\", \"10.0.0.2\"], \"pool\": \"p\"}]}",
            "allocation lock: allocations[0]: \"a/b\" holds [\"10.0.0.1\", \"10.0.0.2\"]: at most one IP per family"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"]}]}",
            "allocation lock: allocations[0]: \"a/b\" has no \"pool\""
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"ports\": [\"53/ICMP\"]}]}",
            "allocation lock: allocations[0]: \"53/ICMP\" is not a port like 53/UDP"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\"}, "
                + "{\"service\": \"a/b\", \"ips\": [\"10.0.0.2\"], \"pool\": \"p\"}]}",
            "allocation lock lists \"a/b\" twice"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"x\"}, "
                + "{\"service\": \"a/c\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"y\"}]}",
            "allocation lock gives \"10.0.0.1\" to both \"a/b\" and \"a/c\", but their sharing keys differ (\"x\" and \"y\")"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\"}, "
                + "{\"service\": \"a/c\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\"}]}",
            "allocation lock gives \"10.0.0.1\" to both \"a/b\" and \"a/c\", but their sharing keys differ (none and none)"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"x\"}, "
                + "{\"service\": \"a/c\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"x\", \"backendKey\": \"app=m\"}]}",
            "allocation lock gives \"10.0.0.1\" to both \"a/b\" and \"a/c\", but their backend keys differ (none and \"app=m\")"
        ),
        (
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"x\", \"ports\": [\"53/UDP\"]}, "
                + "{\"service\": \"a/c\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"x\", \"ports\": [\"53/TCP\", \"53/UDP\"]}]}",
            "allocation lock gives \"10.0.0.1\" to both \"a/b\" and \"a/c\", but both use port 53/UDP"
        ),
    ])
    func rejectsCorruptOrInconsistentLocks(json: String, messagePrefix: String) {
        do {
            _ = try AllocationLock.decode(Self.bytes(json))
            Issue.record("accepted: \(json)")
        } catch {
            #expect(error.description.hasPrefix(messagePrefix), "\(error.description)")
            #expect(error.description.hasSuffix("fix or delete the lock file (addresses are then allocated afresh)"))
        }
    }

    @Test func acceptsSharedAddressesThatFollowTheRules() throws {
        let json =
            "{\"version\": 1, \"allocations\": [{\"service\": \"a/b\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"x\", \"ports\": [\"53/UDP\"]}, "
            + "{\"service\": \"a/c\", \"ips\": [\"10.0.0.1\"], \"pool\": \"p\", \"sharingKey\": \"x\", \"ports\": [\"53/TCP\"]}]}"
        let lock = try AllocationLock.decode(Self.bytes(json))
        #expect(lock.entries.map(\.service) == [key("a/b"), key("a/c")])
        #expect(throws: AllocationLockError.unsupportedVersion(3)) {
            try AllocationLock.decode(Self.bytes("{\"version\": 3, \"allocations\": []}"))
        }
    }
}
