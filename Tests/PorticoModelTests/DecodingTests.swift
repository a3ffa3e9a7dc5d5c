import PorticoModel
import Testing

func load(_ text: String, file: String = "test.yaml") -> Manifests {
    ManifestLoader.load(texts: [(file, text)], now: 1_800_000_000)
}

/// The diagnostics as `LINE:COLUMN: severity: message`, for compact assertions.
func lines(_ manifests: Manifests) -> [String] {
    manifests.diagnostics.sortedByLocation().map {
        "\($0.location.line):\($0.location.column): \($0.severity.rawValue): \($0.message)"
    }
}

func errors(_ manifests: Manifests) -> [Diagnostic] {
    manifests.diagnostics.filter { $0.severity == .error }
}

@Suite struct DecodingTests {
    @Test func multiDocumentFileWithPositions() {
        let manifests = load(
            """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
            spec:
              ports:
              - name: http
                port: 80
                targetPort: http
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: dns
              namespace: infra
            spec:
              type: LoadBalancer
              ports:
              - port: 53
                protocol: UDP
            """
        )
        #expect(manifests.services.count == 2)
        let web = manifests.services[0]
        #expect(web.metadata.namespace == "default")
        #expect(web.metadata.location.line == 1)
        #expect(web.ports[0].targetPort == .string("http"))
        let dns = manifests.services[1]
        #expect(dns.metadata.key == "infra/dns")
        #expect(dns.metadata.location.line == 11)
        #expect(dns.type == .loadBalancer)
        #expect(dns.ports[0].protocol == .udp)
        #expect(dns.ports[0].field.location.line == 19)
        #expect(errors(manifests).isEmpty)
    }

    @Test func listKindIsUnwrapped() {
        let manifests = load(
            """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: networking.k8s.io/v1
              kind: IngressClass
              metadata: {name: nginx}
              spec: {controller: portico.dev/ingress}
            - apiVersion: v1
              kind: Namespace
              metadata: {name: apps, labels: {team: web}}
            """
        )
        #expect(manifests.ingressClasses.map(\.metadata.name) == ["nginx"])
        #expect(manifests.namespaces.first?.metadata.labels == ["team": "web"])
    }

    @Test func unknownKindsAndFieldsAreWarnings() {
        let manifests = load(
            """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: x}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              ports: [{port: 80}]
              colour: blue
            """
        )
        #expect(errors(manifests).isEmpty)
        #expect(
            lines(manifests) == [
                "1:1: warning: apps/v1 Deployment: Portico does not use this kind; it is ignored",
                "10:3: warning: Service default/web: spec.colour: unknown field, ignored",
            ]
        )
    }

    @Test func wrongApiVersionForKnownKindSaysWhichOne() {
        let manifests = load("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\n")
        #expect(
            lines(manifests) == [
                "1:1: warning: extensions/v1beta1 Ingress: Portico reads Ingress from networking.k8s.io/v1"
            ]
        )
    }

    @Test func unquotedNumbersAndBooleansInStringFieldsAreRejected() {
        let manifests = load(
            """
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: app
              annotations:
                nginx.ingress.kubernetes.io/ssl-redirect: false
            spec:
              defaultBackend: {service: {name: web, port: {number: 80}}}
            """
        )
        #expect(
            lines(manifests).contains(
                "6:47: error: Ingress default/app: metadata.annotations.nginx.ingress.kubernetes.io/ssl-redirect: expected a string, found a boolean (false); quote it: \"false\""
            )
        )
    }

    @Test func malformedYAMLPointsAtTheProblem() {
        let manifests = load("apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n")
        let first = manifests.diagnostics.first
        #expect(first?.severity == .error)
        #expect(first?.message.hasPrefix("invalid YAML:") == true)
        #expect(first?.location.line == 5)
    }

    @Test func tabIndentationIsAnError() {
        let manifests = load("apiVersion: v1\nkind: Service\nmetadata:\n\tname: x\n")
        #expect(errors(manifests).count == 1)
        #expect(errors(manifests).first?.location.line == 4)
    }

    @Test func wrongTypesAreNamed() {
        let manifests = load(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              ports:
              - port: eighty
                name: http
              - port: 70000
                name: high
            """
        )
        #expect(
            lines(manifests) == [
                "6:11: error: Service default/web: spec.ports[0].port: expected an integer, found a string",
                "8:11: error: Service default/web: spec.ports[1].port: 70000 is not a valid port; it must be between 1 and 65535",
            ]
        )
    }

    @Test func missingNameAndBadNames() {
        let manifests = load(
            """
            apiVersion: v1
            kind: Service
            metadata: {namespace: Bad_NS}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: 1web}
            spec: {ports: [{port: 80}]}
            """
        )
        let messages = lines(manifests)
        #expect(messages.contains("3:11: error: metadata.name: required field is missing"))
        #expect(
            messages.contains {
                $0.hasPrefix(
                    "7:18: error: Service default/1web: metadata.name: \"1web\" must start with a lowercase letter"
                )
            }
        )
    }

    @Test func duplicateResourcesAreErrors() {
        let manifests = load(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {ports: [{port: 80}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {ports: [{port: 81}]}
            """
        )
        #expect(
            lines(manifests) == [
                "6:1: error: Service default/web: defined twice; the first definition is at test.yaml:1:1"
            ]
        )
    }

    @Test func duplicateKeysAreErrors() {
        let manifests = load("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n")
        #expect(
            lines(manifests) == ["4:3: error: duplicate key \"name\" in this mapping; each key may appear only once"]
        )
    }

    @Test func secretDataIsBase64AndStringDataIsPlain() {
        let manifests = load(
            """
            apiVersion: v1
            kind: Secret
            metadata: {name: s}
            data:
              a: aGVsbG8=
              bad: "***"
            stringData:
              b: world
            """
        )
        let secret = manifests.secrets[0]
        #expect(secret.data["a"] == Array("hello".utf8))
        #expect(secret.data["b"] == Array("world".utf8))
        #expect(secret.data["bad"] == nil)
        #expect(
            lines(manifests) == [
                "6:8: error: Secret default/s: data.bad: not valid base64; put plain text under stringData instead of data"
            ]
        )
    }

    @Test func endpointSliceConditionsAndServiceLabel() {
        let manifests = load(
            """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-1
              labels: {kubernetes.io/service-name: web}
            addressType: IPv4
            endpoints:
            - addresses: [10.1.0.1]
            - addresses: [10.1.0.2]
              conditions: {ready: false}
            - addresses: [not-an-ip]
            ports:
            - {name: http, port: 8080}
            """
        )
        let slice = manifests.endpointSlices[0]
        #expect(slice.endpoints.map(\.address) == ["10.1.0.1", "10.1.0.2"])
        #expect(slice.endpoints.map(\.ready) == [true, false])
        #expect(slice.serviceName == "web")
        #expect(
            lines(manifests).contains(
                "11:15: error: EndpointSlice default/web-1: endpoints[2].addresses[0]: \"not-an-ip\" is not a valid IPv4 address"
            )
        )
        #expect(lines(manifests).contains { $0.contains("no Service \"default/web\"; these endpoints are unused") })
    }

    @Test func legacyMetalLBConfigMapPoolsWithPositions() {
        let manifests = load(
            """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              namespace: metallb-system
              name: config
            data:
              config: |
                address-pools:
                - name: default
                  protocol: layer2
                  addresses:
                  - 10.0.20.200-10.0.20.220
                - name: broken
                  protocol: carrier-pigeon
                  addresses: [10.0.30.0/24]
            """
        )
        #expect(manifests.addressPools.map(\.metadata.name) == ["default", "broken"])
        #expect(manifests.addressPools[0].addresses == ["10.0.20.200-10.0.20.220"])
        #expect(manifests.addressPools[0].addressFields[0].location.line == 12)
        #expect(
            lines(manifests) == [
                "14:17: error: ConfigMap metallb-system/config: data.config.address-pools[1].protocol: \"carrier-pigeon\" is not a protocol; use layer2 or bgp"
            ]
        )
    }

    @Test func ipAddressPoolAndL2Advertisement() {
        let manifests = load(
            """
            apiVersion: metallb.io/v1beta1
            kind: IPAddressPool
            metadata: {name: lan, namespace: metallb-system}
            spec:
              addresses: [10.0.20.200-10.0.20.220, "fd00::/120"]
              autoAssign: false
              serviceAllocation:
                priority: 10
                namespaces: [web]
                serviceSelectors:
                - matchExpressions: [{key: tier, operator: In, values: [front]}]
            ---
            apiVersion: metallb.io/v1beta1
            kind: L2Advertisement
            metadata: {name: l2, namespace: metallb-system}
            spec:
              ipAddressPools: [lan]
              interfaces: [eth0]
            """
        )
        let pool = manifests.addressPools[0]
        #expect(pool.addresses == ["10.0.20.200-10.0.20.220", "fd00::/120"])
        #expect(pool.autoAssign == false)
        #expect(pool.serviceAllocation?.priority == 10)
        #expect(pool.serviceAllocation?.serviceSelectors.first?.matches(["tier": "front"]) == true)
        #expect(pool.serviceAllocation?.serviceSelectors.first?.matches(["tier": "back"]) == false)
        #expect(manifests.l2Advertisements[0].interfaces == ["eth0"])
        #expect(errors(manifests).isEmpty)
    }
}
