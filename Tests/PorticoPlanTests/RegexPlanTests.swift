import PorticoModel
import PorticoPlan
import Testing

@Suite struct RegexPlanTests {
    private func plan(_ annotations: String, path: String) -> Plan {
        let text = """
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
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: app
              annotations: {\(annotations)}
            spec:
              ingressClassName: nginx
              rules:
              - host: a.test
                http:
                  paths:
                  - {path: "\(path)", pathType: ImplementationSpecific, backend: {service: {name: app, port: {number: 80}}}}
            """
        return PlanBuilder.plan(for: ManifestLoader.load(texts: [("regex.yaml", text)], now: 1_800_000_000))
    }

    @Test func anInvalidRegexPathIsAnErrorWithItsPosition() {
        let plan = self.plan("nginx.ingress.kubernetes.io/use-regex: \"true\"", path: "/broken(")
        let error = plan.diagnostics.first { $0.message.contains("is not a valid regular expression") }
        #expect(error?.severity == .error, "\(plan.diagnostics.map(\.description))")
        #expect(error?.location.line == 22)
        #expect(!plan.isValid)
    }

    @Test func rewriteTargetImpliesRegexAndKeepsThePath() {
        let plan = self.plan(
            "nginx.ingress.kubernetes.io/rewrite-target: /$2",
            path: "/something(/|$)(.*)"
        )
        #expect(plan.isValid, "\(plan.diagnostics.map(\.description))")
        let rule = plan.routeTables["nginx"]?.matchingRule(host: "a.test", path: "/SOMETHING/x")
        #expect(rule?.regex == true)
        #expect(rule?.target.path == "/something(/|$)(.*)")
        #expect(rule?.target.policy.rewriteTarget == "/$2")
    }
}
