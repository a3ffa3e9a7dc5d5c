public import PorticoModel

/// Client certificate verification for the hosts of an Ingress (ingress-nginx
/// `auth-tls-verify-client` + `auth-tls-secret`).
public struct ClientAuthority: Sendable, Hashable {
    /// `namespace/name` of the Secret whose `ca.crt` verifies clients; empty for `optional_no_ca`
    /// without a Secret.
    public var secret: String
    /// `on`, `optional` or `optional_no_ca`.
    public var mode: String
    /// The Ingress that asked for it.
    public var ingress: String
    /// The hosts of the Ingress's rules and TLS section (exact or wildcard).
    public var hosts: [String]
    /// PEM CA certificates (the Secret's `ca.crt`); empty when there is no Secret.
    public var caPEM: [UInt8]
    /// `auth-tls-verify-depth`: most CA certificates above the client's certificate.
    public var depth: Int

    public init(secret: String, mode: String, ingress: String, hosts: [String], caPEM: [UInt8], depth: Int = 1) {
        self.secret = secret
        self.mode = mode
        self.ingress = ingress
        self.hosts = hosts
        self.caPEM = caPEM
        self.depth = depth
    }

    /// What ties a route to the TLS context that verified its connection.
    public var id: String {
        Self.id(of: IngressPolicy.ClientCertificate(mode: self.mode, secret: self.secret, depth: self.depth))
    }

    /// The id of the authority a route with this requirement needs. The depth is part of it: a
    /// connection verified with a longer allowed chain must not satisfy a route that allows a
    /// shorter one.
    public static func id(of requirement: IngressPolicy.ClientCertificate) -> String {
        let base = "\(requirement.mode):\(requirement.secret)"
        return requirement.depth == 1 || requirement.mode == "optional_no_ca"
            ? base : "\(base):depth=\(requirement.depth)"
    }

    /// The authority an Ingress asks for, if any.
    static func of(_ ingress: Ingress, policy: IngressPolicy, _ manifests: Manifests) -> ClientAuthority? {
        guard let requirement = policy.clientCertificate else { return nil }
        var caPEM: [UInt8] = []
        let parts = requirement.secret.split(separator: "/").map(String.init)
        if parts.count == 2, let secret = manifests.secret(namespace: parts[0], name: parts[1]) {
            caPEM = secret.data["ca.crt"] ?? []
        }
        var hosts: [String] = []
        for host in ingress.rules.map(\.host) + ingress.tls.flatMap(\.hosts)
        where !host.isEmpty && !hosts.contains(host) {
            hosts.append(host)
        }
        return ClientAuthority(
            secret: requirement.secret,
            mode: requirement.mode,
            ingress: ingress.metadata.key,
            hosts: hosts,
            caPEM: caPEM,
            depth: requirement.depth
        )
    }
}
