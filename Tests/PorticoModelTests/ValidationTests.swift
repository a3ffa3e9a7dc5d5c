import PorticoModel
import Testing

func indent(_ text: String, _ spaces: Int) -> String {
    text.split(separator: "\n").map { String(repeating: " ", count: spaces) + $0 }.joined(separator: "\n")
}

func tlsSecret(_ name: String, crt: String = Fixtures.wildcardCertificate, key: String = Fixtures.wildcardKey) -> String
{
    """
    apiVersion: v1
    kind: Secret
    metadata: {name: \(name)}
    type: kubernetes.io/tls
    stringData:
      tls.crt: |
    \(indent(crt, 4))
      tls.key: |
    \(indent(key, 4))
    """
}

let classAndService = """
    apiVersion: networking.k8s.io/v1
    kind: IngressClass
    metadata: {name: nginx}
    spec: {controller: portico.dev/ingress}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      ports:
      - {name: http, port: 80, targetPort: 8080}
    """

func ingress(_ spec: String, annotations: String = "") -> String {
    """
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: app
    \(annotations.isEmpty ? "" : "  annotations:\n" + indent(annotations, 4))
    spec:
      ingressClassName: nginx
    \(indent(spec, 2))
    """
}

func messages(_ manifests: Manifests) -> [String] {
    manifests.diagnostics.sortedByLocation().map { "\($0.severity.rawValue): \($0.message)" }
}

@Suite struct IngressValidationTests {
    @Test(arguments: [
        ("10.0.0.1", "is an IP address; Ingress hosts must be DNS names"),
        ("example.com:8080", "has a port"),
        ("foo.*.com", "a wildcard must be the whole first label"),
        ("*foo.com", "a wildcard must be the whole first label"),
        ("*.*.com", "only the first label may be a wildcard"),
        ("Exa_mple.com", "RFC 1123 subdomain"),
    ])
    func invalidHosts(host: String, expected: String) {
        let manifests = load(
            classAndService + "\n---\n"
                + ingress(
                    """
                    rules:
                    - host: "\(host)"
                      http:
                        paths:
                        - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
                    """
                )
        )
        let hostErrors = errors(manifests).filter { $0.message.contains("spec.rules[0].host") }
        #expect(hostErrors.count == 1, "\(messages(manifests))")
        #expect(hostErrors.first?.message.contains(expected) == true, "\(messages(manifests))")
        #expect(hostErrors.first?.location.line == 21)
    }

    @Test func ipAddressHostMessageIsExact() {
        let manifests = load(
            classAndService + "\n---\n"
                + ingress(
                    """
                    rules:
                    - host: "10.0.0.1"
                      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
                    """
                )
        )
        #expect(
            messages(manifests) == [
                "error: Ingress default/app: spec.rules[0].host: \"10.0.0.1\" is an IP address; Ingress hosts must be DNS names (leave host empty to match every address)"
            ]
        )
    }

    @Test func pathTypeIsRequiredAndChecked() {
        let manifests = load(
            classAndService + "\n---\n"
                + ingress(
                    """
                    rules:
                    - http:
                        paths:
                        - {path: /a, backend: {service: {name: web, port: {number: 80}}}}
                        - {path: /b, pathType: Regex, backend: {service: {name: web, port: {number: 80}}}}
                        - {path: relative, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
                    """
                )
        )
        #expect(
            messages(manifests) == [
                "error: Ingress default/app: spec.rules[0].http.paths[0].pathType: required field is missing; use Exact, Prefix or ImplementationSpecific",
                "error: Ingress default/app: spec.rules[0].http.paths[1].pathType: \"Regex\" is not a path type; use Exact, Prefix or ImplementationSpecific",
                "error: Ingress default/app: spec.rules[0].http.paths[2].path: \"relative\" must be an absolute path starting with '/' for pathType Prefix",
            ]
        )
    }

    @Test func backendPortNumberXorName() {
        let manifests = load(
            classAndService + "\n---\n"
                + ingress(
                    """
                    rules:
                    - http:
                        paths:
                        - {path: /a, pathType: Prefix, backend: {service: {name: web, port: {number: 80, name: http}}}}
                        - {path: /b, pathType: Prefix, backend: {service: {name: web, port: {}}}}
                    """
                )
        )
        #expect(
            messages(manifests) == [
                "error: Ingress default/app: spec.rules[0].http.paths[0].backend.service.port: set exactly one of number and name, not both",
                "error: Ingress default/app: spec.rules[0].http.paths[1].backend.service.port: set exactly one of number and name",
            ]
        )
    }

    @Test func backendMustNameAnExistingServiceAndPort() {
        let manifests = load(
            classAndService + "\n---\n"
                + ingress(
                    """
                    rules:
                    - http:
                        paths:
                        - {path: /a, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
                        - {path: /b, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}
                        - {path: /c, pathType: Prefix, backend: {service: {name: web, port: {name: https}}}}
                        - {path: /d, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
                    """
                )
        )
        #expect(
            messages(manifests) == [
                "error: Ingress default/app: spec.rules[0].http.paths[0].backend.service.name: no Service \"default/missing\"; an Ingress backend must name a Service in the Ingress's namespace",
                "error: Ingress default/app: spec.rules[0].http.paths[1].backend.service.port.number: Service \"default/web\" has no port 81; it has http (80)",
                "error: Ingress default/app: spec.rules[0].http.paths[2].backend.service.port.name: Service \"default/web\" has no port https; it has http (80)",
            ]
        )
        #expect(errors(manifests).map(\.location.line) == [23, 24, 25])
    }

    @Test func ingressOfAnotherControllerIsNotChecked() {
        let manifests = load(
            """
            apiVersion: networking.k8s.io/v1
            kind: IngressClass
            metadata: {name: traefik}
            spec: {controller: traefik.io/ingress-controller}
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: other}
            spec:
              ingressClassName: traefik
              defaultBackend: {service: {name: nowhere, port: {number: 1}}}
            """
        )
        #expect(manifests.diagnostics.isEmpty)
    }

    @Test func missingClassIsReported() {
        let manifests = load(
            ingress("defaultBackend: {service: {name: web, port: {number: 80}}}").replacingNginx(with: "nginx-typo")
        )
        #expect(
            messages(manifests) == [
                "warning: Ingress default/app: spec.ingressClassName: no IngressClass \"nginx-typo\"; this Ingress is not served. Declare an IngressClass \"nginx-typo\" with spec.controller: portico.dev/ingress"
            ]
        )
    }

    @Test func annotationsAreValidatedAndUnknownOnesReported() {
        let manifests = load(
            classAndService + "\n---\n"
                + ingress(
                    "defaultBackend: {service: {name: web, port: {number: 80}}}",
                    annotations: """
                        nginx.ingress.kubernetes.io/ssl-redirect: "maybe"
                        nginx.ingress.kubernetes.io/proxy-body-size: "50x"
                        nginx.ingress.kubernetes.io/whitelist-source-range: "10.0.0.0/8, 300.1.1.1/8"
                        nginx.ingress.kubernetes.io/configuration-snippet: "more_set_headers x"
                        nginx.ingress.kubernetes.io/enable-cors: "true"
                        nginx.ingress.kubernetes.io/force-ssl-redirect: "true"
                        """
                )
        )
        let found = messages(manifests)
        let prefix = "Ingress default/app: metadata.annotations[nginx.ingress.kubernetes.io/"
        #expect(found.contains("error: \(prefix)ssl-redirect]: \"maybe\" must be \"true\" or \"false\""))
        #expect(
            found.contains("error: \(prefix)proxy-body-size]: \"50x\" must be a size such as 8m, 512k or 0 (unlimited)")
        )
        #expect(
            found.contains(
                "error: \(prefix)whitelist-source-range]: \"300.1.1.1/8\" is not a CIDR such as 192.168.0.0/16"
            )
        )
        #expect(
            found.contains {
                $0.hasPrefix("warning: \(prefix)configuration-snippet]: snippets inject raw nginx configuration")
            }
        )
        #expect(found.contains("warning: \(prefix)enable-cors]: not supported by Portico; ignored (value \"true\")"))
        #expect(!found.contains { $0.contains("force-ssl-redirect") })
    }

    @Test func policyDefaultsAndParsing() {
        var meta = ObjectMeta(name: "a", location: SourceLocation(file: "f", line: 1, column: 1))
        var (policy, _) = IngressAnnotations.policy(for: meta, hasTLS: true)
        #expect(policy.sslRedirect == true)
        #expect(policy.maximumBodySize == 1_048_576)
        meta.annotations = [
            "nginx.ingress.kubernetes.io/ssl-redirect": "false",
            "nginx.ingress.kubernetes.io/proxy-body-size": "50m",
            "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
            "nginx.ingress.kubernetes.io/auth-tls-verify-client": "on",
            "nginx.ingress.kubernetes.io/auth-tls-secret": "infra/client-ca",
        ]
        (policy, _) = IngressAnnotations.policy(for: meta, hasTLS: true)
        #expect(policy.sslRedirect == false)
        #expect(policy.maximumBodySize == 50 * 1_048_576)
        #expect(policy.backendProtocol == .https)
        #expect(policy.clientCertificate?.secret == "infra/client-ca")
        #expect(ByteSize.parse("0") == 0)
        #expect(ByteSize.parse("8k") == 8192)
        #expect(ByteSize.parse("m") == nil)
    }
}

@Suite struct CertificateValidationTests {
    func tlsIngress(secret: String, hosts: String = "[\"blog.example.test\"]") -> String {
        classAndService + "\n---\n"
            + ingress(
                """
                tls: [{hosts: \(hosts), secretName: \(secret)}]
                rules:
                - host: blog.example.test
                  http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
                """
            )
    }

    func notAfter() -> Int {
        guard
            case .success(let summary) = CertificateInspector.summary(ofChain: Array(Fixtures.wildcardCertificate.utf8))
        else { return 0 }
        return summary.notValidAfter
    }

    @Test func validPairHasNoProblems() {
        let manifests = load(tlsIngress(secret: "wild") + "\n---\n" + tlsSecret("wild"))
        #expect(messages(manifests) == [])
        guard
            case .success(let summary) = CertificateInspector.summary(ofChain: Array(Fixtures.wildcardCertificate.utf8))
        else {
            Issue.record("fixture certificate does not parse")
            return
        }
        #expect(summary.dnsNames == ["*.example.test", "example.test"])
    }

    @Test func mismatchedKeyIsAnError() {
        let manifests = load(tlsIngress(secret: "wild") + "\n---\n" + tlsSecret("wild", key: Fixtures.otherKey))
        #expect(
            messages(manifests) == [
                "error: Secret default/wild: data[tls.key]: tls.key is not the private key of the certificate in tls.crt"
            ]
        )
    }

    @Test func expiryIsCheckedAgainstNow() {
        let text = tlsIngress(secret: "wild") + "\n---\n" + tlsSecret("wild")
        let soon = ManifestLoader.load(texts: [("t.yaml", text)], now: notAfter() - 5 * 86_400)
        #expect(
            messages(soon) == [
                "warning: Secret default/wild: data[tls.crt]: the certificate expires in 5 days; renew it soon"
            ]
        )
        let expired = ManifestLoader.load(texts: [("t.yaml", text)], now: notAfter() + 3 * 86_400)
        #expect(
            messages(expired) == [
                "error: Secret default/wild: data[tls.crt]: the certificate expired 3 days ago; renew it"
            ]
        )
    }

    @Test func garbageCertificateIsAnError() {
        let manifests = load(tlsSecret("bad", crt: "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"))
        #expect(errors(manifests).count == 1)
        #expect(errors(manifests).first?.message.contains("data[tls.crt] is not a readable PEM certificate") == true)
        #expect(errors(manifests).first?.location.line == 6)
    }

    @Test func missingSecretWrongTypeAndUncoveredHost() {
        let missing = load(tlsIngress(secret: "nope"))
        #expect(
            messages(missing) == [
                "error: Ingress default/app: spec.tls[0].secretName: no Secret \"default/nope\"; TLS Secrets must be in the Ingress's namespace"
            ]
        )
        let opaque = load(
            tlsIngress(secret: "plain")
                + "\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: plain}\nstringData: {a: b}\n"
        )
        #expect(
            messages(opaque) == [
                "error: Ingress default/app: spec.tls[0].secretName: Secret \"default/plain\" has type Opaque, not kubernetes.io/tls"
            ]
        )
        let uncovered = load(tlsIngress(secret: "wild", hosts: "[\"blog.other.test\"]") + "\n---\n" + tlsSecret("wild"))
        #expect(messages(uncovered).count == 1)
        #expect(messages(uncovered).first?.contains("\"blog.other.test\" is not covered by the certificate") == true)
    }

    @Test func wildcardCoverage() {
        #expect(CertificateInspector.name("*.example.test", covers: "a.example.test"))
        #expect(!CertificateInspector.name("*.example.test", covers: "a.b.example.test"))
        #expect(!CertificateInspector.name("*.example.test", covers: "example.test"))
        #expect(CertificateInspector.name("*.example.test", covers: "*.example.test"))
    }
}

extension String {
    func replacingNginx(with name: String) -> String {
        replacing("ingressClassName: nginx", with: "ingressClassName: \(name)")
    }
}

@Suite struct PorticoAnnotationTests {
    func service(_ annotations: String, ports: String = "[{name: dns, port: 53, protocol: UDP}]") -> String {
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: dns
          annotations:
        \(indent(annotations, 4))
        spec:
          type: LoadBalancer
          ports: \(ports)
        """
    }

    @Test func proxyProtocolValues() {
        #expect(messages(load(service("portico.dev/proxy-protocol: v2"))) == [])
        #expect(
            messages(load(service("portico.dev/proxy-protocol: v3"))) == [
                "error: Service default/dns: metadata.annotations[portico.dev/proxy-protocol]: \"v3\" must be v1 or v2"
            ]
        )
        #expect(
            messages(load(service("portico.dev/proxy-protocol: v1"))) == [
                "error: Service default/dns: metadata.annotations[portico.dev/proxy-protocol]: PROXY protocol v1 cannot carry UDP; use v2 (or split the UDP ports into their own Service)"
            ]
        )
        #expect(messages(load(service("portico.dev/proxy-protocol: v1", ports: "[{port: 25}]"))) == [])
    }

    @Test func trustedSourcesAndTypos() {
        let bad = load(service("portico.dev/accept-proxy-protocol-from: \"10.0.0.1/32, router\""))
        #expect(
            messages(bad) == [
                "error: Service default/dns: metadata.annotations[portico.dev/accept-proxy-protocol-from]: \"router\" is not a CIDR such as 192.168.1.1/32"
            ]
        )
        let typo = load(service("portico.dev/proxy-protocoll: v2"))
        #expect(messages(typo).count == 1)
        #expect(messages(typo).first?.contains("unknown Portico annotation") == true)
    }

    @Test func healthCheckValues() {
        #expect(messages(load(service("portico.dev/health-check: tcp"))) == [])
        #expect(
            messages(
                load(service("portico.dev/health-check: http:/healthz\nportico.dev/health-check-interval: \"2\""))
            ) == []
        )
        #expect(
            messages(load(service("portico.dev/health-check: ping"))) == [
                "error: Service default/dns: metadata.annotations[portico.dev/health-check]: \"ping\" must be tcp or http:/PATH, e.g. http:/healthz"
            ]
        )
        #expect(
            messages(load(service("portico.dev/health-check: tcp\nportico.dev/health-check-interval: \"0\""))) == [
                "error: Service default/dns: metadata.annotations[portico.dev/health-check-interval]: \"0\" must be a number of seconds from 1 to 3600"
            ]
        )
        #expect(
            HealthCheckSpec.of(["portico.dev/health-check": "http:/ready"])
                == HealthCheckSpec(httpPath: "/ready", intervalSeconds: 5)
        )
        #expect(HealthCheckSpec.of(["portico.dev/health-check": "nope"]) == nil)
    }
}

@Suite struct FrontCertificateTests {
    func front(_ annotations: String = "") -> String {
        """
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
        \(indent(annotations, 4))
        spec:
          type: LoadBalancer
          ports: [{name: https, port: 443}]
        """
    }

    @Test func httpsFrontWithoutAnyCertificateServesTheSelfSignedOne() {
        #expect(
            messages(load(front())) == [
                "warning: Service default/front: no certificate for the https port: it serves a self-signed \"Portico Default Certificate\" made at start (kept in the state directory when there is one), which clients do not trust; add a tls section to an Ingress of class \"portico\" or set portico.dev/default-certificate"
            ]
        )
    }

    @Test func defaultCertificateMustNameATLSSecret() {
        #expect(messages(load(front("portico.dev/default-certificate: wild") + "\n---\n" + tlsSecret("wild"))) == [])
        #expect(
            messages(load(front("portico.dev/default-certificate: other/missing"))) == [
                "error: Service default/front: metadata.annotations[portico.dev/default-certificate]: no Secret \"other/missing\""
            ]
        )
    }
}
