import Foundation
import Testing

/// The JSON contract of `portico plan --format json`, decoded independently of Portico's types.
private struct PlanJSON: Decodable {
    struct Allocation: Decodable, Equatable {
        var service: String
        var ips: [String]
        var pool: String
    }

    struct Failure: Decodable {
        var service: String
        var reason: String
    }

    struct Listener: Decodable, Equatable {
        var address: String
        var port: Int
        var `protocol`: String
        var kind: String
        var service: String
    }

    struct Route: Decodable, Equatable {
        var host: String
        var path: String
        var pathType: String
        var service: String
        var port: String
    }

    struct Diagnostic: Decodable {
        var file: String
        var line: Int
        var severity: String
        var message: String
    }

    var allocations: [Allocation]
    var failures: [Failure]
    var listeners: [Listener]
    var routes: [Route]
    var diagnostics: [Diagnostic]
}

private func planJSON(_ directory: ManifestDirectory, _ extra: [String] = []) throws -> (Int32, PlanJSON) {
    let output = try PorticoProcess.run(["plan", "--format", "json", directory.path] + extra)
    return (output.status, try JSONDecoder().decode(PlanJSON.self, from: Data(output.stdout.utf8)))
}

private let pool = """
    apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: lan, namespace: metallb-system}
    spec:
      addresses: [10.0.20.200-10.0.20.202]

    """

private func loadBalancer(_ name: String, port: Int, extra: String = "") -> String {
    """
    apiVersion: v1
    kind: Service
    metadata:
      name: \(name)
    \(extra)
    spec:
      type: LoadBalancer
      ports: [{port: \(port)}]

    """
}

@Suite(.serialized) struct PlanCommandTests {
    @Test func routesFollowKubernetesSemantics() throws {
        let directory = try ManifestDirectory([
            "all.yaml": """
            apiVersion: networking.k8s.io/v1
            kind: IngressClass
            metadata:
              name: portico
              annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
            spec: {controller: portico.dev/ingress}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: a}
            spec: {ports: [{name: http, port: 80}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: b}
            spec: {ports: [{port: 8080}]}
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: first, creationTimestamp: "2023-01-01T00:00:00Z"}
            spec:
              rules:
              - host: "*.example.test"
                http:
                  paths:
                  - {path: /api/, pathType: Prefix, backend: {service: {name: a, port: {name: http}}}}
                  - {path: /exact, pathType: Exact, backend: {service: {name: b, port: {number: 8080}}}}
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: second, creationTimestamp: "2024-01-01T00:00:00Z"}
            spec:
              rules:
              - host: "*.example.test"
                http:
                  paths:
                  - {path: /api, pathType: Prefix, backend: {service: {name: b, port: {number: 8080}}}}
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: legacy, annotations: {kubernetes.io/ingress.class: other}}
            spec:
              defaultBackend: {service: {name: a, port: {number: 80}}}
            """
        ])
        let (status, plan) = try planJSON(directory)
        #expect(status == 0)
        #expect(
            plan.routes == [
                .init(host: "*.example.test", path: "/api/", pathType: "Prefix", service: "default/a", port: "http"),
                .init(host: "*.example.test", path: "/exact", pathType: "Exact", service: "default/b", port: "8080"),
            ]
        )
        let conflict = plan.diagnostics.filter { $0.message.contains("already routed") }
        #expect(conflict.count == 1)
        #expect(conflict.first?.message.hasPrefix("Ingress default/second: spec.rules[0].http.paths[0]") == true)
        #expect(conflict.first?.severity == "warning")
    }

    @Test func allocationsAreStableAcrossRunsWithTheLock() throws {
        let state = try ManifestDirectory()
        let directory = try ManifestDirectory([
            "pool.yaml": pool,
            "m.yaml": loadBalancer("mmm", port: 80),
        ])
        var (status, plan) = try planJSON(directory, ["--state-dir", state.path, "--write"])
        #expect(status == 0)
        #expect(plan.allocations == [.init(service: "default/mmm", ips: ["10.0.20.200"], pool: "lan")])
        #expect(FileManager.default.fileExists(atPath: state.path + "/allocations.lock.json"))

        // A Service sorting before it appears: with the lock, mmm keeps its address.
        try directory.write("a.yaml", loadBalancer("aaa", port: 80))
        (status, plan) = try planJSON(directory, ["--state-dir", state.path])
        #expect(status == 0)
        #expect(
            plan.allocations.sorted { $0.service < $1.service } == [
                .init(service: "default/aaa", ips: ["10.0.20.201"], pool: "lan"),
                .init(service: "default/mmm", ips: ["10.0.20.200"], pool: "lan"),
            ]
        )
        // Without the lock, the same manifests would give aaa the first address.
        (status, plan) = try planJSON(directory)
        #expect(plan.allocations.first { $0.service == "default/aaa" }?.ips == ["10.0.20.200"])
    }

    @Test func corruptLockIsReportedNotTrusted() throws {
        let state = try ManifestDirectory(["allocations.lock.json": "{\"version\": 1, \"entries\": [{\"service\": 3}]}"]
        )
        let directory = try ManifestDirectory(["pool.yaml": pool, "m.yaml": loadBalancer("mmm", port: 80)])
        let output = try PorticoProcess.run(["check", directory.path, "--state-dir", state.path])
        #expect(output.status == 1)
        #expect(output.stdout.contains("allocations.lock.json:1:1: error: the allocation lock is not valid"))
    }

    @Test func sharingConflictIsExplained() throws {
        let directory = try ManifestDirectory([
            "pool.yaml": pool,
            "dns.yaml": loadBalancer(
                "dns",
                port: 53,
                extra: "  annotations: {metallb.io/allow-shared-ip: shared, metallb.io/loadBalancerIPs: 10.0.20.200}"
            ),
            "mail.yaml": """
            apiVersion: v1
            kind: Service
            metadata:
              name: mail
              annotations: {metallb.io/allow-shared-ip: shared, metallb.io/loadBalancerIPs: 10.0.20.200}
            spec:
              type: LoadBalancer
              externalTrafficPolicy: Local
              selector: {app: mail}
              ports: [{port: 25}]
            """,
        ])
        let (status, plan) = try planJSON(directory)
        #expect(status == 0)
        #expect(plan.allocations.map(\.service) == ["default/dns"])
        #expect(plan.failures.map(\.service) == ["default/mail"])
        let warning = plan.diagnostics.first { $0.message.hasPrefix("Service default/mail:") }
        #expect(warning?.message.contains("externalTrafficPolicy") == true, "\(warning?.message ?? "none")")
        #expect(warning?.file.hasSuffix("mail.yaml") == true)
    }

    @Test func listenersInJSON() throws {
        let directory = try ManifestDirectory([
            "pool.yaml": pool,
            "dns.yaml": loadBalancer("dns", port: 53),
        ])
        let (_, plan) = try planJSON(directory)
        #expect(
            plan.listeners == [
                .init(address: "10.0.20.200", port: 53, protocol: "TCP", kind: "tcp", service: "default/dns")
            ]
        )
    }
}
