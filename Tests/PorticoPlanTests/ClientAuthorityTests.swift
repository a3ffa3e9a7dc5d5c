import PorticoModel
import PorticoPlan
import Testing

@Suite struct ClientAuthorityTests {
    private static func ingress(
        _ name: String,
        host: String?,
        ca: String,
        timestamp: String,
        depth: Int? = nil
    ) -> String {
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: \(name)
          creationTimestamp: "\(timestamp)"
          annotations:
            nginx.ingress.kubernetes.io/auth-tls-verify-client: "on"
            nginx.ingress.kubernetes.io/auth-tls-secret: default/\(ca)\(depth.map { "\n    nginx.ingress.kubernetes.io/auth-tls-verify-depth: \"\($0)\"" } ?? "")
        spec:
          ingressClassName: nginx
          rules:
          - \(host.map { "host: \($0)\n    " } ?? "")http:
              paths:
              - {path: /\(name), pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}
        """
    }

    private static let base = """
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata: {name: nginx}
        spec: {controller: portico.dev/ingress}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: app}
        spec: {ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: ca-one}
        stringData: {ca.crt: "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: ca-two}
        stringData: {ca.crt: "-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n"}
        """

    private func plan(_ documents: [String]) -> Plan {
        let text = ([Self.base] + documents).joined(separator: "\n---\n")
        return PlanBuilder.plan(for: ManifestLoader.load(texts: [("auth.yaml", text)], now: 1_800_000_000))
    }

    @Test func authoritiesCarryHostsModeAndCA() {
        let plan = self.plan([
            Self.ingress("one", host: "a.example.com", ca: "ca-one", timestamp: "2024-01-01T00:00:00Z")
        ])
        let authorities = plan.clientAuthorities["nginx"] ?? []
        #expect(authorities.count == 1)
        #expect(authorities.first?.hosts == ["a.example.com"])
        #expect(authorities.first?.mode == "on")
        #expect(authorities.first?.secret == "default/ca-one")
        let caPEM = String(decoding: authorities.first?.caPEM ?? [], as: UTF8.self)
        #expect(caPEM.contains("MIIB"))
        // The route names the same authority the TLS context is built for.
        let route = plan.routeTables["nginx"]?.lookup(host: "a.example.com", path: "/one")
        #expect(route.flatMap { $0.policy.clientCertificate.map(ClientAuthority.id(of:)) } == authorities.first?.id)
    }

    @Test func theDepthIsPartOfTheAuthority() {
        let plan = self.plan([
            Self.ingress("deep", host: "a.example.com", ca: "ca-one", timestamp: "2024-01-01T00:00:00Z", depth: 2),
            Self.ingress("flat", host: "b.example.com", ca: "ca-one", timestamp: "2025-01-01T00:00:00Z"),
            Self.ingress("same", host: "a.example.com", ca: "ca-one", timestamp: "2025-06-01T00:00:00Z"),
        ])
        let authorities = plan.clientAuthorities["nginx"] ?? []
        #expect(authorities.map(\.depth) == [2, 1, 1])
        // Same CA, another depth: a connection verified for one must not pass for the other.
        #expect(authorities[0].id != authorities[1].id)
        let route = plan.routeTables["nginx"]?.lookup(host: "a.example.com", path: "/deep")
        #expect(route.flatMap { $0.policy.clientCertificate.map(ClientAuthority.id(of:)) } == authorities[0].id)
        #expect(
            plan.diagnostics.map(\.message).contains {
                $0.contains("already verifies client certificates with default/ca-one at auth-tls-verify-depth 2")
            },
            "\(plan.diagnostics)"
        )
    }

    @Test func conflictingAuthoritiesOnOneHostAndHostlessRulesAreReported() {
        let plan = self.plan([
            Self.ingress("old", host: "a.example.com", ca: "ca-one", timestamp: "2024-01-01T00:00:00Z"),
            Self.ingress("new", host: "a.example.com", ca: "ca-two", timestamp: "2025-01-01T00:00:00Z"),
            Self.ingress("any", host: nil, ca: "ca-one", timestamp: "2025-06-01T00:00:00Z"),
        ])
        let messages = plan.diagnostics.map(\.message)
        #expect(
            messages.contains {
                $0.contains(
                    "Ingress default/new: host \"a.example.com\" already verifies client certificates with default/ca-one"
                )
            },
            "\(messages)"
        )
        #expect(
            messages.contains { $0.contains("Ingress default/any: auth-tls-verify-client applies to named hosts only") }
        )
        #expect(!messages.contains { $0.contains("Ingress default/old: host") })
    }
}
