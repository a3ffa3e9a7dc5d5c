import PorticoHTTP
import PorticoL4
import PorticoModel
import PorticoPlan
import Testing

@testable import PorticoRuntime

private func plan(_ text: String) -> Plan {
    PlanBuilder.plan(for: ManifestLoader.load(texts: [("app.yaml", text)], now: 1_800_000_000))
}

private let manifests = """
    apiVersion: networking.k8s.io/v1
    kind: IngressClass
    metadata: {name: portico}
    spec: {controller: portico.dev/ingress}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: front
      annotations:
        portico.dev/ingress-class: portico
        portico.dev/proxy-protocol: v2
        portico.dev/accept-proxy-protocol-from: 10.0.0.1/32
        metallb.io/loadBalancerIPs: 127.0.0.1
    spec:
      type: LoadBalancer
      ports:
      - {name: http, port: 8080}
      - {name: dns, port: 5353, protocol: UDP}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: secure
      annotations: {portico.dev/health-check: "http:/healthz", portico.dev/health-check-interval: "10"}
    spec: {ports: [{name: https, port: 443}]}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: secure-1
      labels: {kubernetes.io/service-name: secure}
    addressType: IPv6
    endpoints: [{addresses: ["fd00::7"]}]
    ports: [{name: https, port: 8443}]
    ---
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: secure
      annotations:
        nginx.ingress.kubernetes.io/backend-protocol: HTTPS
        nginx.ingress.kubernetes.io/proxy-body-size: 50m
        nginx.ingress.kubernetes.io/proxy-read-timeout: "120"
        nginx.ingress.kubernetes.io/force-ssl-redirect: "true"
        nginx.ingress.kubernetes.io/whitelist-source-range: "10.0.0.0/8, 192.168.1.7, fd00::/8"
        nginx.ingress.kubernetes.io/proxy-send-timeout: "30"
        nginx.ingress.kubernetes.io/limit-rps: "7"
        nginx.ingress.kubernetes.io/limit-connections: "3"
        nginx.ingress.kubernetes.io/limit-whitelist: "10.9.0.0/16"
        nginx.ingress.kubernetes.io/rewrite-target: /$1
        nginx.ingress.kubernetes.io/app-root: /start
        nginx.ingress.kubernetes.io/auth-tls-verify-client: optional_no_ca
        nginx.ingress.kubernetes.io/auth-url: http://auth.example.test:4180/oauth2/auth
        nginx.ingress.kubernetes.io/auth-signin: https://auth.example.test/oauth2/start
        nginx.ingress.kubernetes.io/auth-response-headers: "x-auth-request-user, x-auth-request-email"
    spec:
      ingressClassName: portico
      rules:
      - host: secure.example.test
        http: {paths: [{path: /(.*), pathType: Prefix, backend: {service: {name: secure, port: {name: https}}}}]}
    """

@Suite struct PlanApplicationTests {
    @Test func ingressPolicyReachesTheEngineConfiguration() throws {
        let configurations = PlanApplication.engineConfigurations(plan(manifests))
        let configuration = try #require(configurations["portico"])
        #expect(configuration.listeners == [HTTPListener(address: "127.0.0.1", port: 8080, kind: .http)])
        // Listener equality ignores the trusted ranges: check the mapped value itself.
        #expect(configuration.listeners.first?.acceptProxyProtocolFrom.map { "\($0)" } == ["10.0.0.1/32"])
        let route = try #require(configuration.routes.lookup(host: "secure.example.test", path: "/x"))
        #expect(route.service == "default/secure")
        #expect(route.sslRedirect)
        #expect(route.maxBodySize == 50 * 1_048_576)
        #expect(route.readTimeout == .seconds(120))
        let pool = try #require(configuration.pools[route.pool])
        #expect(pool.endpoints == [UpstreamEndpoint(host: "fd00::7", port: 8443)])
        #expect(pool.tls != nil, "backend-protocol HTTPS must give TLS to the upstream")
        #expect(pool.healthCheck == HealthCheck(kind: .http(path: "/healthz"), interval: .seconds(10)))
        #expect(route.allowedSources.map(\.description) == ["10.0.0.0/8", "192.168.1.7/32", "fd00:0:0:0:0:0:0:0/8"])
        #expect(route.sendTimeout == .seconds(30))
        #expect(route.rateLimit?.id == "default/secure")
        #expect(route.rateLimit?.requestsPerSecond == 7)
        #expect(route.rateLimit?.connections == 3)
        #expect(route.rateLimit?.exempt.map(\.description) == ["10.9.0.0/16"])
        #expect(route.rewrite?.apply(to: "/a/b?c") == "/a/b?c")
        #expect(route.appRoot == "/start")
        #expect(route.clientCertificate == "optional_no_ca:")
        #expect(configuration.clientCertificateAuthorities.map(\.serverNames) == [["secure.example.test"]])
        #expect(configuration.clientCertificateAuthorities.first?.mode == .optionalNoCA)
        #expect(route.forwardAuth?.url == "http://auth.example.test:4180/oauth2/auth")
        #expect(route.forwardAuth?.signin == "https://auth.example.test/oauth2/start")
        #expect(route.forwardAuth?.responseHeaders == ["x-auth-request-user", "x-auth-request-email"])
    }

    @Test func l4ListenersCarryProxyProtocolSettings() {
        let configuration = PlanApplication.l4Configuration(plan(manifests))
        #expect(configuration.tcp.isEmpty)
        #expect(configuration.udp.count == 1)
        #expect(configuration.udp.first?.port == 5353)
        #expect(configuration.udp.first?.sendProxyProtocol == .v2)
    }

    @Test func endpointTextParses() {
        #expect(PlanApplication.hostPort("[fd00::1]:80")?.host == "fd00::1")
        #expect(PlanApplication.hostPort("10.0.0.1:8080")?.port == 8080)
        #expect(PlanApplication.hostPort("nonsense") == nil)
    }
}

@Suite struct DefaultCertificateTests {
    @Test func frontAnnotationChoosesTheDefaultCertificate() throws {
        // The plan carries the Secret named by the annotation; the engine gets it as default.
        var testPlan = plan(manifests)
        let served = ServedCertificate(
            secret: "default/fallback",
            hosts: [],
            dnsNames: ["fallback.test"],
            chainPEM: [1],
            keyPEM: [2]
        )
        testPlan.fronts[0].defaultCertificate = served
        let configuration = try #require(PlanApplication.engineConfigurations(testPlan)["portico"])
        #expect(configuration.defaultCertificate?.serverNames == ["fallback.test"])
    }
}
