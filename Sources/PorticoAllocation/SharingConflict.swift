/// Why a Service cannot use an address that another Service already uses (rule 8), with
/// MetalLB's wording and a user-facing explanation of what to change.
public struct SharingConflict: Hashable, Sendable {
    /// What differs between the two Services.
    public enum Kind: Hashable, Sendable {
        /// The Service holding the address has no sharing key.
        case existingDoesNotAllowSharing
        /// The Service asking for the address has no sharing key.
        case newDoesNotAllowSharing
        /// The sharing keys differ.
        case sharingKeyMismatch(requested: String, existing: String)
        /// The sharing keys match but the backend keys differ (Local policy).
        case backendKeyMismatch(requested: String, existing: String)
        /// Both Services use this (protocol, port) pair.
        case portInUse(ServicePort)
    }

    /// The contested address.
    public var address: IPAddress
    /// The Service asking for the address.
    public var service: ServiceKey
    /// Its external traffic policy.
    public var servicePolicy: ExternalTrafficPolicy
    /// The Service already using the address.
    public var other: ServiceKey
    /// Its external traffic policy.
    public var otherPolicy: ExternalTrafficPolicy
    /// What differs.
    public var kind: Kind

    /// The rule that refused.
    public var rule: AllocationRule {
        switch kind {
        case .existingDoesNotAllowSharing, .newDoesNotAllowSharing, .sharingKeyMismatch: .sharingKey
        case .backendKeyMismatch: .backendKey
        case .portInUse: .portInUse
        }
    }

    /// MetalLB's wording, naming the address and the other Service.
    public var message: String {
        let ip = "\"\(address)\""
        switch kind {
        case .existingDoesNotAllowSharing:
            return "\(ip): existing service \"\(other)\" does not allow sharing"
        case .newDoesNotAllowSharing:
            return "\(ip): new service does not allow sharing, and the address is used by \"\(other)\""
        case .sharingKeyMismatch(let requested, let existing):
            return "\(ip): sharing key \"\(requested)\" does not match sharing key \"\(existing)\" of \"\(other)\""
        case .backendKeyMismatch(let requested, let existing):
            return
                "\(ip): backend key \"\(requested)\" does not match backend key \"\(existing)\" of \"\(other)\""
        case .portInUse(let port):
            return "port \(port) is already in use on \(ip) by \"\(other)\""
        }
    }

    /// Why the two Services cannot share the address, and what to change.
    public var explanation: String {
        let dedicated = "or give \(service) a dedicated address (request another IP, or remove its loadBalancerIPs)"
        switch kind {
        case .existingDoesNotAllowSharing:
            return
                "\(other) uses \(address) without the metallb.io/allow-shared-ip annotation, so no other Service "
                + "may use it. Add metallb.io/allow-shared-ip with the same key to both Services, \(dedicated)."
        case .newDoesNotAllowSharing:
            return
                "\(service) has no metallb.io/allow-shared-ip annotation, but \(address) is already used by "
                + "\(other). Add metallb.io/allow-shared-ip with \(other)'s key to \(service), \(dedicated)."
        case .sharingKeyMismatch(let requested, let existing):
            return
                "\(service) has sharing key \"\(requested)\" but \(other) uses \(address) with sharing key "
                + "\"\(existing)\"; Services share an address only when their metallb.io/allow-shared-ip keys "
                + "are equal. Use the same key on both, \(dedicated)."
        case .backendKeyMismatch(let requested, let existing):
            return backendExplanation(requested: requested, existing: existing, dedicated: dedicated)
        case .portInUse(let port):
            return
                "\(service) and \(other) both use \(port) on \(address); an address carries each (protocol, port) "
                + "pair once (TCP and UDP on the same port may coexist). Change one of the ports, \(dedicated)."
        }
    }

    private func backendExplanation(requested: String, existing: String, dedicated: String) -> String {
        let why =
            "Local-policy services share only with services that have the identical selector: a Local address "
            + "is announced from a node running the Service's pods, so every Service on it must select the same pods."
        let proxy =
            "(the backend then no longer sees client IPs; to keep them, add the annotation "
            + "`portico.dev/proxy-protocol: v2` and accept PROXY protocol v2 in the backend)"
        switch (servicePolicy, otherPolicy) {
        case (.local, .cluster):
            return
                "\(service) has externalTrafficPolicy: Local (selector \(requested)) and cannot share \(address) "
                + "with \(other), which has externalTrafficPolicy: Cluster. \(why) Either set "
                + "`externalTrafficPolicy: Cluster` on \(service) \(proxy), \(dedicated)."
        case (.cluster, .local):
            return
                "\(other) has externalTrafficPolicy: Local (selector \(existing)), so \(service), which has "
                + "externalTrafficPolicy: Cluster, cannot share \(address) with it. \(why) Either set "
                + "`externalTrafficPolicy: Cluster` on \(other) \(proxy), \(dedicated)."
        default:
            return
                "\(service) (selector \(requested)) and \(other) (selector \(existing)) both have "
                + "externalTrafficPolicy: Local but select different pods. \(why) Either make the selectors "
                + "identical, set `externalTrafficPolicy: Cluster` on both \(proxy), \(dedicated)."
        }
    }
}

/// What the allocator knows about a user of an address, for sharing checks.
struct AddressUser: Hashable, Sendable {
    var service: ServiceKey
    var sharingKey: String?
    var backendKey: String
    var policy: ExternalTrafficPolicy
    var ports: [ServicePort]

    init(_ request: ServiceRequest) {
        self.service = request.key
        self.sharingKey = request.sharingKey
        self.backendKey = request.backendKey
        self.policy = request.externalTrafficPolicy
        self.ports = request.ports
    }

    /// The conflict if `self` wanted to join `other` on `address` (rule 8), in MetalLB's order.
    func conflict(joining other: AddressUser, on address: IPAddress) -> SharingConflict? {
        let kind: SharingConflict.Kind
        if let existing = other.sharingKey, let requested = sharingKey {
            if existing != requested {
                kind = .sharingKeyMismatch(requested: requested, existing: existing)
            } else if backendKey != other.backendKey {
                kind = .backendKeyMismatch(requested: backendKey, existing: other.backendKey)
            } else if let port = ports.sorted().first(where: other.ports.contains) {
                kind = .portInUse(port)
            } else {
                return nil
            }
        } else {
            kind = other.sharingKey == nil ? .existingDoesNotAllowSharing : .newDoesNotAllowSharing
        }
        return SharingConflict(
            address: address,
            service: service,
            servicePolicy: policy,
            other: other.service,
            otherPolicy: other.policy,
            kind: kind
        )
    }
}

extension ServiceRequest {
    /// Why this Service could not use `address` while `other` uses it; nil when both may share it.
    /// `portico check` uses this to explain conflicts between two Services.
    public func sharingConflict(with other: ServiceRequest, on address: IPAddress) -> SharingConflict? {
        AddressUser(self).conflict(joining: AddressUser(other), on: address)
    }
}
