import Foundation
import PorticoAllocation
import Yams

/// Turns YAML documents into typed resources, reporting every problem with its position.
struct ResourceDecoder {
    let sink: DiagnosticSink

    /// The kinds Portico reads, by `apiVersion` group and kind.
    static let supported: [String: Set<String>] = [
        "v1": ["Service", "Endpoints", "Secret", "ConfigMap", "Namespace", "List"],
        "discovery.k8s.io/v1": ["EndpointSlice"],
        "networking.k8s.io/v1": ["Ingress", "IngressClass"],
        "metallb.io/v1beta1": ["IPAddressPool", "L2Advertisement"],
        NetbootKinds.apiVersion: NetbootKinds.kinds,
    ]

    func decodeDocument(_ field: Field, into manifests: inout Manifests) {
        if field.node.mapping == nil {
            field.error(
                "expected a Kubernetes resource (a mapping with apiVersion, kind and metadata), found \(field.kindDescription)"
            )
            return
        }
        guard
            let object = field.object([
                "apiVersion", "kind", "metadata", "spec", "status", "data", "stringData",
                "binaryData", "type", "immutable", "items", "endpoints", "ports", "addressType", "subsets",
            ])
        else { return }
        sink.subject = ""
        let apiVersion = object.string("apiVersion", required: true) ?? ""
        guard let kind = object.string("kind", required: true) else { return }
        if kind == "List" || (kind.hasSuffix("List") && apiVersion == "v1") {
            for item in object.list("items") {
                decodeDocument(item, into: &manifests)
            }
            return
        }
        if apiVersion.isEmpty { return }
        guard let kinds = Self.supported[apiVersion], kinds.contains(kind) else {
            let known = Self.supported.contains { $0.value.contains(kind) }
            let hint =
                known
                ? "Portico reads \(kind) from \(Self.supported.first { $0.value.contains(kind) }!.key)"
                : "Portico does not use this kind; it is ignored"
            sink.warning(object.field.location, "\(apiVersion) \(kind): \(hint)")
            return
        }
        // Name the resource in messages about its metadata too, as far as it can be read.
        let rawMeta = object["metadata"]?.node.mapping
        let rawName = rawMeta?["name"]?.scalar?.string
        let rawNamespace = rawMeta?["namespace"]?.scalar?.string ?? "default"
        if let rawName {
            sink.subject =
                Self.clusterScoped.contains(kind) ? "\(kind) \(rawName)" : "\(kind) \(rawNamespace)/\(rawName)"
        }
        guard let metadata = decodeMetadata(object, kind: kind) else { return }
        sink.subject = "\(kind) \(kind == "Namespace" || kind == "IngressClass" ? metadata.name : metadata.key)"
        defer { sink.subject = "" }
        // Fields that do not belong to this kind were accepted above for brevity; report them.
        let allowed: Set<String> =
            switch kind {
            case "Secret": ["data", "stringData", "type", "immutable"]
            case "ConfigMap": ["data", "binaryData", "immutable"]
            case "EndpointSlice": ["endpoints", "ports", "addressType"]
            case "Endpoints": ["subsets"]
            default: ["spec", "status"]
            }
        for (key, child) in object.fields
        where !["apiVersion", "kind", "metadata"].contains(key) && !allowed.contains(key) {
            child.warning("unknown field for \(kind), ignored")
        }
        switch kind {
        case "Service": manifests.services.append(decodeService(object, metadata))
        case "EndpointSlice": manifests.endpointSlices.append(decodeEndpointSlice(object, metadata))
        case "Endpoints": manifests.endpoints.append(decodeEndpoints(object, metadata))
        case "Ingress": manifests.ingresses.append(decodeIngress(object, metadata))
        case "IngressClass": manifests.ingressClasses.append(decodeIngressClass(object, metadata))
        case "Secret": manifests.secrets.append(decodeSecret(object, metadata))
        case "ConfigMap":
            let configMap = decodeConfigMap(object, metadata)
            manifests.configMaps.append(configMap)
            if metadata.namespace == "metallb-system" && metadata.name == "config" {
                manifests.addressPools += LegacyMetalLBConfig.pools(from: configMap, sink: sink)
            }
        case "IPAddressPool": manifests.addressPools.append(decodeAddressPool(object, metadata))
        case "L2Advertisement": manifests.l2Advertisements.append(decodeL2Advertisement(object, metadata))
        case "Namespace": manifests.namespaces.append(Namespace(metadata: metadata))
        case _ where apiVersion == NetbootKinds.apiVersion && NetbootKinds.kinds.contains(kind):
            decodeNetboot(kind, object, metadata, into: &manifests)
        default: break
        }
    }

    // MARK: - metadata

    private static let clusterScoped: Set<String> = ["IngressClass", "Namespace"]

    func decodeMetadata(_ object: Object, kind: String) -> ObjectMeta? {
        guard let metadataField = object["metadata"] else {
            object.missing("metadata")
            return nil
        }
        guard
            let meta = metadataField.object([
                "name", "namespace", "labels", "annotations", "creationTimestamp", "uid", "resourceVersion",
                "generation", "managedFields", "ownerReferences", "finalizers", "generateName",
                "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
            ])
        else { return nil }
        guard let name = meta.string("name") else {
            meta.missing("name", meta["generateName"] != nil ? "generateName is not supported here" : "")
            return nil
        }
        let nameProblem =
            kind == "Service"
            ? KubernetesNames.dns1035LabelProblem(name) : KubernetesNames.dns1123SubdomainProblem(name)
        if let nameProblem {
            meta["name"]?.error("\"\(name)\" \(nameProblem)")
        }
        var namespace = "default"
        if let value = meta.string("namespace") {
            if Self.clusterScoped.contains(kind) {
                meta["namespace"]?.warning("\(kind) is cluster-scoped; namespace is ignored")
            } else if let problem = KubernetesNames.dns1123LabelProblem(value) {
                meta["namespace"]?.error("\"\(value)\" \(problem)")
            } else {
                namespace = value
            }
        }
        let labels = meta.stringMap("labels")
        if let labelsObject = meta["labels"]?.mapping() {
            for (key, field) in labelsObject.fields.sorted(by: { $0.key < $1.key }) {
                if let problem = KubernetesNames.qualifiedNameProblem(key) {
                    field.error("label key \(problem)")
                }
                if let value = labels[key], let problem = KubernetesNames.labelValueProblem(value) {
                    field.error("label value \"\(value)\" \(problem)")
                }
            }
        }
        var annotations: [String: String] = [:]
        var annotationLocations: [String: SourceLocation] = [:]
        if let annotationsObject = meta["annotations"]?.mapping() {
            for (key, field) in annotationsObject.fields {
                if let problem = KubernetesNames.qualifiedNameProblem(key) {
                    field.error("annotation key \(problem)")
                }
                guard let value = field.string() else { continue }
                annotations[key] = value
                annotationLocations[key] = field.location
            }
        }
        var created: Int?
        if let field = meta["creationTimestamp"], let text = field.string() {
            created = RFC3339.seconds(text)
            if created == nil {
                field.error("\"\(text)\" is not an RFC 3339 time such as 2024-01-31T12:00:00Z")
            }
        }
        return ObjectMeta(
            name: name,
            namespace: namespace,
            labels: labels,
            annotations: annotations,
            annotationLocations: annotationLocations,
            creationTimestamp: created,
            location: object.field.location
        )
    }

    // MARK: - Service

    func decodeService(_ object: Object, _ metadata: ObjectMeta) -> Service {
        var service = Service(metadata: metadata)
        guard
            let spec = object.object(
                "spec",
                [
                    "type", "ports", "selector", "loadBalancerIP", "loadBalancerClass", "externalTrafficPolicy",
                    "ipFamilies", "ipFamilyPolicy", "clusterIP", "clusterIPs", "externalIPs", "sessionAffinity",
                    "sessionAffinityConfig", "loadBalancerSourceRanges", "externalName", "healthCheckNodePort",
                    "publishNotReadyAddresses", "internalTrafficPolicy", "allocateLoadBalancerNodePorts",
                    "trafficDistribution",
                ]
            )
        else {
            object.missing("spec")
            return service
        }
        if let field = spec["type"], let text = field.string() {
            if let type = Service.ServiceType(rawValue: text) {
                service.type = type
            } else {
                field.error("\"\(text)\" is not a Service type; use ClusterIP, NodePort, LoadBalancer or ExternalName")
            }
        }
        var seenNames: Set<String> = []
        var seenPorts: Set<String> = []
        let portFields = spec.list("ports")
        for field in portFields {
            guard
                let port = field.object(["name", "protocol", "port", "targetPort", "nodePort", "appProtocol"]),
                let number = port.int("port", required: true)
            else { continue }
            if let problem = KubernetesNames.portProblem(number) { port["port"]?.error(problem) }
            var transport = TransportProtocol.tcp
            if let text = port.string("protocol") {
                if let value = TransportProtocol(rawValue: text) {
                    transport = value
                } else {
                    port["protocol"]?.error("\"\(text)\" is not a protocol; use TCP, UDP or SCTP")
                }
            }
            let name = port.string("name")
            if let name {
                if let problem = KubernetesNames.dns1123LabelProblem(name) {
                    port["name"]?.error("\"\(name)\" \(problem)")
                }
                if !seenNames.insert(name).inserted {
                    port["name"]?.error("duplicate port name \"\(name)\"; port names must be unique in a Service")
                }
            } else if portFields.count > 1 {
                port.missing("name", "a Service with several ports must name each of them")
            }
            if !seenPorts.insert("\(number)/\(transport.rawValue)").inserted {
                port["port"]?.error("port \(number)/\(transport.rawValue) is listed twice")
            }
            let target = port["targetPort"]?.intOrString()
            switch target {
            case .int(let value):
                if let problem = KubernetesNames.portProblem(value) { port["targetPort"]?.error(problem) }
            case .string(let value):
                if let problem = KubernetesNames.ianaServiceNameProblem(value) {
                    port["targetPort"]?.error("\"\(value)\" \(problem)")
                }
            case nil: break
            }
            service.ports.append(
                Service.Port(
                    name: name,
                    protocol: transport,
                    port: number,
                    targetPort: target,
                    appProtocol: port.string("appProtocol"),
                    field: FieldReference(path: field.path, location: field.location)
                )
            )
        }
        service.selector = spec.stringMap("selector")
        if let field = spec["loadBalancerIP"], let text = field.string() {
            if !IPText.isIPAddress(text) {
                field.error("\"\(text)\" is not an IP address")
            }
            service.loadBalancerIP = text
            field.warning(
                "deprecated since Kubernetes 1.24; use the annotation metallb.io/loadBalancerIPs (Portico reads both)"
            )
        }
        service.loadBalancerClass = spec.string("loadBalancerClass")
        if let field = spec["externalTrafficPolicy"], let text = field.string() {
            // "Local" and "Cluster"; Kubernetes also accepts the old spellings.
            switch text {
            case "Cluster", "Local": service.externalTrafficPolicy = text
            default: field.error("\"\(text)\" is not an external traffic policy; use Cluster or Local")
            }
        }
        for family in spec.list("ipFamilies") {
            guard let text = family.string() else { continue }
            if text == "IPv4" || text == "IPv6" {
                service.ipFamilies.append(text)
            } else {
                family.error("\"\(text)\" is not an IP family; use IPv4 or IPv6")
            }
        }
        if let field = spec["ipFamilyPolicy"], let text = field.string() {
            if ["SingleStack", "PreferDualStack", "RequireDualStack"].contains(text) {
                service.ipFamilyPolicy = text
            } else {
                field.error(
                    "\"\(text)\" is not an IP family policy; use SingleStack, PreferDualStack or RequireDualStack"
                )
            }
        }
        if service.type == .loadBalancer && service.ports.isEmpty {
            spec.field.error("ports: a LoadBalancer Service needs at least one port")
        }
        return service
    }

    // MARK: - endpoints

    private func decodeEndpointPort(_ field: Field) -> EndpointPort? {
        guard let port = field.object(["name", "port", "protocol", "appProtocol"]),
            let number = port.int("port", required: true)
        else { return nil }
        if let problem = KubernetesNames.portProblem(number) { port["port"]?.error(problem) }
        var transport = TransportProtocol.tcp
        if let text = port.string("protocol") {
            if let value = TransportProtocol(rawValue: text) {
                transport = value
            } else {
                port["protocol"]?.error("\"\(text)\" is not a protocol; use TCP, UDP or SCTP")
            }
        }
        return EndpointPort(name: port.string("name"), port: number, protocol: transport)
    }

    func decodeEndpointSlice(_ object: Object, _ metadata: ObjectMeta) -> EndpointSlice {
        let addressType = object.string("addressType", required: true) ?? "IPv4"
        if !["IPv4", "IPv6", "FQDN"].contains(addressType) {
            object["addressType"]?.error("\"\(addressType)\" is not an address type; use IPv4, IPv6 or FQDN")
        }
        var addresses: [EndpointAddress] = []
        for field in object.list("endpoints") {
            guard
                let endpoint = field.object([
                    "addresses", "conditions", "nodeName", "zone", "hostname", "targetRef", "hints",
                    "deprecatedTopology",
                ])
            else { continue }
            var ready = true
            if let conditions = endpoint.object("conditions", ["ready", "serving", "terminating"]) {
                // An unset `ready` means ready (discovery.k8s.io/v1).
                ready = (conditions.bool("ready") ?? true) && !(conditions.bool("terminating") ?? false)
            }
            let values = endpoint.list("addresses")
            if values.isEmpty { endpoint.missing("addresses", "each endpoint needs at least one address") }
            for value in values {
                guard let text = value.string() else { continue }
                let valid =
                    switch addressType {
                    case "IPv4": IPText.isIPv4(text)
                    case "IPv6": IPText.isIPv6(text)
                    default: KubernetesNames.dns1123SubdomainProblem(text) == nil
                    }
                if !valid {
                    value.error("\"\(text)\" is not a valid \(addressType) address")
                    continue
                }
                addresses.append(EndpointAddress(address: text, ready: ready, nodeName: endpoint.string("nodeName")))
            }
        }
        let ports = object.list("ports").compactMap(decodeEndpointPort)
        if metadata.labels["kubernetes.io/service-name"] == nil {
            sink.warning(
                metadata.location,
                "metadata.labels: no kubernetes.io/service-name label, so this slice belongs to no Service; add the label naming its Service"
            )
        }
        return EndpointSlice(metadata: metadata, addressType: addressType, endpoints: addresses, ports: ports)
    }

    func decodeEndpoints(_ object: Object, _ metadata: ObjectMeta) -> Endpoints {
        var subsets: [Endpoints.Subset] = []
        for field in object.list("subsets") {
            guard let subset = field.object(["addresses", "notReadyAddresses", "ports"]) else { continue }
            var addresses: [EndpointAddress] = []
            for (key, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for item in subset.list(key) {
                    guard let address = item.object(["ip", "hostname", "nodeName", "targetRef"]),
                        let ip = address.string("ip", required: true)
                    else { continue }
                    if !IPText.isIPAddress(ip) {
                        address["ip"]?.error("\"\(ip)\" is not an IP address")
                        continue
                    }
                    addresses.append(EndpointAddress(address: ip, ready: ready, nodeName: address.string("nodeName")))
                }
            }
            subsets.append(
                Endpoints.Subset(addresses: addresses, ports: subset.list("ports").compactMap(decodeEndpointPort))
            )
        }
        return Endpoints(metadata: metadata, subsets: subsets)
    }

    // MARK: - Ingress

    private func decodeBackend(_ field: Field) -> Ingress.Backend? {
        guard let backend = field.object(["service", "resource"]) else { return nil }
        let reference = FieldReference(path: field.path, location: field.location)
        if let resource = backend.object("resource", ["apiGroup", "kind", "name"]) {
            if backend["service"] != nil {
                field.error("set either service or resource, not both")
            }
            let kind = resource.string("kind", required: true) ?? "?"
            let name = resource.string("name", required: true) ?? "?"
            return Ingress.Backend(service: nil, resource: "\(kind)/\(name)", field: reference)
        }
        guard let service = backend.object("service", ["name", "port"]) else {
            backend.missing("service", "a backend names a Service and a port")
            return nil
        }
        guard let name = service.string("name", required: true) else { return nil }
        guard let port = service.object("port", ["number", "name"]) else {
            service.missing("port", "give port.number or port.name")
            return nil
        }
        let number = port.int("number")
        let portName = port.string("name")
        switch (number, portName) {
        case (let number?, nil):
            if let problem = KubernetesNames.portProblem(number) { port["number"]?.error(problem) }
            return Ingress.Backend(service: .init(name: name, port: .int(number)), field: reference)
        case (nil, let portName?):
            return Ingress.Backend(service: .init(name: name, port: .string(portName)), field: reference)
        case (.some, .some):
            port.field.error("set exactly one of number and name, not both")
        case (nil, nil):
            port.field.error("set exactly one of number and name")
        }
        return nil
    }

    func decodeIngress(_ object: Object, _ metadata: ObjectMeta) -> Ingress {
        var ingress = Ingress(metadata: metadata)
        guard let spec = object.object("spec", ["ingressClassName", "defaultBackend", "tls", "rules"]) else {
            object.missing("spec")
            return ingress
        }
        ingress.ingressClassName = spec.string("ingressClassName")
        if let field = spec["defaultBackend"] {
            ingress.defaultBackend = decodeBackend(field)
        }
        for field in spec.list("tls") {
            guard let tls = field.object(["hosts", "secretName"]) else { continue }
            var hosts: [String] = []
            for hostField in tls.list("hosts") {
                guard let host = hostField.string() else { continue }
                if let problem = KubernetesNames.ingressHostProblem(host) {
                    hostField.error(problem)
                } else {
                    hosts.append(host.lowercased())
                }
            }
            ingress.tls.append(
                Ingress.TLS(
                    hosts: hosts,
                    secretName: tls.string("secretName"),
                    field: FieldReference(path: field.path, location: field.location)
                )
            )
        }
        for field in spec.list("rules") {
            guard let rule = field.object(["host", "http"]) else { continue }
            var host = ""
            if let hostField = rule["host"], let text = hostField.string() {
                if let problem = KubernetesNames.ingressHostProblem(text) {
                    hostField.error(problem)
                    continue
                }
                host = text.lowercased()
            }
            var paths: [Ingress.Path] = []
            if let http = rule.object("http", ["paths"]) {
                let pathFields = http.list("paths")
                if pathFields.isEmpty { http.missing("paths", "an http rule needs at least one path") }
                for pathField in pathFields {
                    guard let pathObject = pathField.object(["path", "pathType", "backend"]) else { continue }
                    let pathType = pathObject.string("pathType")
                    if pathType == nil, pathObject["pathType"] == nil {
                        pathObject.missing("pathType", "use Exact, Prefix or ImplementationSpecific")
                    }
                    let path = pathObject.string("path") ?? (pathType == "ImplementationSpecific" ? "/" : "")
                    if let pathType {
                        if !["Exact", "Prefix", "ImplementationSpecific"].contains(pathType) {
                            pathObject["pathType"]?.error(
                                "\"\(pathType)\" is not a path type; use Exact, Prefix or ImplementationSpecific"
                            )
                        } else if pathType != "ImplementationSpecific" && !path.hasPrefix("/") {
                            (pathObject["path"] ?? pathObject.field).error(
                                "\"\(path)\" must be an absolute path starting with '/' for pathType \(pathType)"
                            )
                        } else if pathType == "Prefix" && path.contains("//") {
                            pathObject["path"]?.error("\"\(path)\" must not contain '//' for pathType Prefix")
                        }
                    }
                    guard let backendField = pathObject["backend"] else {
                        pathObject.missing("backend")
                        continue
                    }
                    guard let backend = decodeBackend(backendField), let pathType else { continue }
                    paths.append(
                        Ingress.Path(
                            path: path,
                            pathType: pathType,
                            backend: backend,
                            field: FieldReference(path: pathField.path, location: pathField.location)
                        )
                    )
                }
            }
            ingress.rules.append(
                Ingress.Rule(
                    host: host,
                    paths: paths,
                    field: FieldReference(path: field.path, location: field.location)
                )
            )
        }
        if ingress.rules.isEmpty && ingress.defaultBackend == nil && spec["rules"] == nil {
            spec.field.error("an Ingress needs rules or a defaultBackend")
        }
        return ingress
    }

    func decodeIngressClass(_ object: Object, _ metadata: ObjectMeta) -> IngressClass {
        let spec = object.object("spec", ["controller", "parameters"])
        if spec == nil { object.missing("spec") }
        let controller = spec?.string("controller", required: true) ?? ""
        return IngressClass(metadata: metadata, controller: controller)
    }

    // MARK: - Secret and ConfigMap

    func decodeSecret(_ object: Object, _ metadata: ObjectMeta) -> Secret {
        var secret = Secret(metadata: metadata, type: object.string("type") ?? "Opaque", data: [:])
        if let data = object.mapping("data") {
            for (key, field) in data.fields.sorted(by: { $0.key < $1.key }) {
                guard let text = field.string() else { continue }
                let compact = text.filter { !$0.isWhitespace }
                guard let decoded = Data(base64Encoded: compact) else {
                    field.error("not valid base64; put plain text under stringData instead of data")
                    continue
                }
                secret.data[key] = Array(decoded)
                secret.dataLocations[key] = field.location
            }
        }
        if let stringData = object.mapping("stringData") {
            for (key, field) in stringData.fields.sorted(by: { $0.key < $1.key }) {
                guard let text = field.string() else { continue }
                secret.data[key] = Array(text.utf8)
                secret.dataLocations[key] = field.location
            }
        }
        return secret
    }

    func decodeConfigMap(_ object: Object, _ metadata: ObjectMeta) -> ConfigMap {
        var configMap = ConfigMap(metadata: metadata, data: [:])
        guard let data = object.mapping("data") else { return configMap }
        for (key, field) in data.fields {
            guard let text = field.string() else { continue }
            configMap.data[key] = text
            var embedded = EmbeddedText(firstLine: field.location.line, columnOffset: 0, location: field.location)
            if case .scalar(let scalar) = field.node, scalar.style == .literal || scalar.style == .folded {
                // A block scalar's text starts on the next line, indented.
                embedded = EmbeddedText(
                    firstLine: field.location.line + 1,
                    columnOffset: sink.indentation(ofLine: field.location.line + 1),
                    location: field.location
                )
            }
            configMap.dataFields[key] = embedded
        }
        return configMap
    }

    // MARK: - MetalLB

    func decodeSelector(_ field: Field) -> LabelSelector? {
        guard let object = field.object(["matchLabels", "matchExpressions"]) else { return nil }
        var selector = LabelSelector(matchLabels: object.stringMap("matchLabels"))
        for item in object.list("matchExpressions") {
            guard let expression = item.object(["key", "operator", "values"]),
                let key = expression.string("key", required: true),
                let op = expression.string("operator", required: true)
            else { continue }
            let values = expression.stringList("values")
            guard let parsed = LabelSelector.Operator(rawValue: op) else {
                expression["operator"]?.error("\"\(op)\" is not an operator; use In, NotIn, Exists or DoesNotExist")
                continue
            }
            let requirement = LabelSelector.Requirement(key: key, operator: parsed, values: values)
            if let problem = requirement.problem {
                expression.field.error(problem)
                continue
            }
            selector.matchExpressions.append(requirement)
        }
        return selector
    }

    func decodeAddressPool(_ object: Object, _ metadata: ObjectMeta) -> IPAddressPool {
        var pool = IPAddressPool(metadata: metadata, addresses: [])
        guard let spec = object.object("spec", ["addresses", "autoAssign", "avoidBuggyIPs", "serviceAllocation"])
        else {
            object.missing("spec")
            return pool
        }
        for field in spec.list("addresses") {
            guard let text = field.string() else { continue }
            pool.addresses.append(text)
            pool.addressFields.append(FieldReference(path: field.path, location: field.location))
        }
        if spec["addresses"] == nil { spec.missing("addresses", "a pool needs at least one range or CIDR") }
        pool.autoAssign = spec.bool("autoAssign") ?? true
        pool.avoidBuggyIPs = spec.bool("avoidBuggyIPs") ?? false
        if let allocation = spec.object(
            "serviceAllocation",
            ["priority", "namespaces", "namespaceSelectors", "serviceSelectors"]
        ) {
            pool.serviceAllocation = IPAddressPool.ServiceAllocation(
                priority: allocation.int("priority") ?? 0,
                namespaces: allocation.stringList("namespaces"),
                namespaceSelectors: allocation.list("namespaceSelectors").compactMap(decodeSelector),
                serviceSelectors: allocation.list("serviceSelectors").compactMap(decodeSelector)
            )
        }
        return pool
    }

    func decodeL2Advertisement(_ object: Object, _ metadata: ObjectMeta) -> L2Advertisement {
        var advertisement = L2Advertisement(metadata: metadata)
        guard
            let spec = object.object(
                "spec",
                ["ipAddressPools", "ipAddressPoolSelectors", "nodeSelectors", "interfaces"]
            )
        else { return advertisement }
        advertisement.ipAddressPools = spec.stringList("ipAddressPools")
        advertisement.ipAddressPoolSelectors = spec.list("ipAddressPoolSelectors").compactMap(decodeSelector)
        advertisement.nodeSelectors = spec.list("nodeSelectors").compactMap(decodeSelector)
        advertisement.interfaces = spec.stringList("interfaces")
        return advertisement
    }
}

/// RFC 3339 timestamps as Kubernetes writes them (`2024-01-31T12:00:00Z`, optional
/// fraction and offset).
enum RFC3339 {
    static func seconds(_ text: String) -> Int? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int(date.timeIntervalSince1970) }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text).map { Int($0.timeIntervalSince1970) }
    }
}
