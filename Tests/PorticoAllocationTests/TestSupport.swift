import PorticoAllocation

/// Parses an address the test knows to be valid.
func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}

func key(_ text: String) -> ServiceKey {
    guard let key = ServiceKey(text) else { fatalError("bad test key \(text)") }
    return key
}

/// A LoadBalancer Service `namespace/name`.
func service(
    _ namespacedName: String,
    ips: [String] = [],
    pool: String? = nil,
    sharingKey: String? = nil,
    policy: ExternalTrafficPolicy = .cluster,
    selector: [String: String] = [:],
    ports: [ServicePort] = [],
    labels: [String: String] = [:],
    families: [IPFamily] = [],
    familyPolicy: IPFamilyPolicy = .singleStack,
    isLoadBalancer: Bool = true
) -> ServiceRequest {
    let serviceKey = key(namespacedName)
    return ServiceRequest(
        namespace: serviceKey.namespace,
        name: serviceKey.name,
        labels: labels,
        isLoadBalancer: isLoadBalancer,
        requestedAddresses: ips.isEmpty ? .none : .addresses(ips),
        requestedPool: pool,
        sharingKey: sharingKey,
        externalTrafficPolicy: policy,
        selector: selector,
        ports: ports,
        ipFamilies: families,
        ipFamilyPolicy: familyPolicy
    )
}

func tcp(_ port: Int) -> ServicePort { ServicePort(.tcp, port) }
func udp(_ port: Int) -> ServicePort { ServicePort(.udp, port) }

extension AllocationResult {
    /// The addresses of `service` as text, or nil when it has none.
    func ips(_ service: String) -> [String]? {
        allocation(for: key(service))?.ips.map(\.description)
    }

    func reason(_ service: String) -> String? {
        failure(for: key(service))?.reason
    }
}

/// A tiny deterministic random generator (SplitMix64), so property tests replay exactly.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
