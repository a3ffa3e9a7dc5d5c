import PorticoModel
import PorticoPlan
import PorticoRouting
import Testing

private func plan(_ text: String) -> Plan {
    PlanBuilder.plan(for: ManifestLoader.load(texts: [("plan.yaml", text)], now: 1_800_000_000))
}

private let base = """
    apiVersion: networking.k8s.io/v1
    kind: IngressClass
    metadata: {name: nginx}
    spec: {controller: portico.dev/ingress}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: front
      namespace: ingress
      annotations:
        portico.dev/ingress-class: nginx
        metallb.io/loadBalancerIPs: 127.0.0.1
    spec:
      type: LoadBalancer
      ports:
      - {name: http, port: 8080}
      - {name: dns, port: 5353, protocol: UDP}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: blog}
    spec:
      ports:
      - {name: web, port: 80, targetPort: http}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: blog-a
      labels: {kubernetes.io/service-name: blog}
    addressType: IPv4
    endpoints:
    - addresses: [10.1.0.1]
    - addresses: [10.1.0.2]
      conditions: {ready: false}
    ports:
    - {name: web, port: 8080}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: api}
    spec:
      ports:
      - {port: 80}
    ---
    apiVersion: v1
    kind: Endpoints
    metadata: {name: api}
    subsets:
    - addresses: [{ip: "fd00::5"}]
      ports: [{port: 9000}]
    """

@Suite struct PlanTests {
    @Test func routesResolveEndpointsThroughNamedPorts() {
        let result = plan(
            base + """

                ---
                apiVersion: networking.k8s.io/v1
                kind: Ingress
                metadata: {name: blog}
                spec:
                  ingressClassName: nginx
                  rules:
                  - host: blog.example.test
                    http:
                      paths:
                      - {path: /, pathType: Prefix, backend: {service: {name: blog, port: {name: web}}}}
                      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
                """
        )
        #expect(result.isValid, "\(result.diagnostics)")
        let table = result.routeTables["nginx"]
        let blog = table?.lookup(host: "blog.example.test", path: "/posts/1")
        #expect(blog?.service == "default/blog")
        #expect(blog?.endpoints == ["10.1.0.1:8080"])
        let api = table?.lookup(host: "BLOG.example.test:8080", path: "/api/x")
        #expect(api?.endpoints == ["[fd00::5]:9000"])
        #expect(table?.lookup(host: "other.test", path: "/") == nil)
    }

    @Test func listenersForFrontAndL4Ports() {
        let result = plan(base)
        #expect(
            result.listeners == [
                Listener(address: "127.0.0.1", port: 8080, protocol: "TCP", kind: .http, service: "ingress/front"),
                Listener(
                    address: "127.0.0.1",
                    port: 5353,
                    protocol: "UDP",
                    kind: .udp,
                    service: "ingress/front",
                    servicePort: 5353,
                    endpoints: []
                ),
            ]
        )
        #expect(result.fronts.map(\.ingressClass) == ["nginx"])
        #expect(result.allocations == [Allocation(service: "ingress/front", ips: ["127.0.0.1"], pool: "")])
    }

    @Test func olderIngressWinsDuplicatePathAndLoserIsReported() {
        let result = plan(
            base + """

                ---
                apiVersion: networking.k8s.io/v1
                kind: Ingress
                metadata: {name: newer, creationTimestamp: "2025-06-01T00:00:00Z"}
                spec:
                  ingressClassName: nginx
                  rules:
                  - host: blog.example.test
                    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
                ---
                apiVersion: networking.k8s.io/v1
                kind: Ingress
                metadata: {name: older, creationTimestamp: "2024-01-01T00:00:00Z"}
                spec:
                  ingressClassName: nginx
                  rules:
                  - host: blog.example.test
                    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: blog, port: {name: web}}}}]}
                """
        )
        #expect(result.routeTables["nginx"]?.lookup(host: "blog.example.test", path: "/")?.ingress == "default/older")
        let warnings = result.diagnostics.filter { $0.message.contains("already routed") }
        #expect(
            warnings.map(\.message) == [
                "Ingress default/newer: spec.rules[0].http.paths[0]: host \"blog.example.test\" path \"/\" is already routed by the older Ingress default/older; this path is ignored"
            ]
        )
    }

    @Test func defaultBackendCatchesEverythingElse() {
        let result = plan(
            base + """

                ---
                apiVersion: networking.k8s.io/v1
                kind: Ingress
                metadata: {name: fallback}
                spec:
                  ingressClassName: nginx
                  defaultBackend: {service: {name: api, port: {number: 80}}}
                """
        )
        #expect(result.routeTables["nginx"]?.lookup(host: "anything.test", path: "/x")?.service == "default/api")
        let document = PlanDocument(result)
        #expect(document.routes.count == 1)
        #expect(document.routes.first?.isDefault == true)
    }

    @Test func sameAddressAndPortTwiceIsAnError() {
        let result = plan(
            base + """

                ---
                apiVersion: v1
                kind: Service
                metadata:
                  name: clash
                  annotations: {metallb.io/loadBalancerIPs: 127.0.0.1}
                spec:
                  type: LoadBalancer
                  ports: [{port: 8080}]
                """
        )
        #expect(!result.isValid)
        #expect(
            result.diagnostics.contains {
                $0.message
                    == "Service ingress/front: spec.ports[0]: port 8080/TCP on 127.0.0.1 is already used by Service default/clash; two Services cannot share an address and port"
            }
        )
    }
}
