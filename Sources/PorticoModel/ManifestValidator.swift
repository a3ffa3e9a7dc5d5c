import PorticoAllocation

/// Checks that need the whole set of resources: duplicates, references between
/// resources, certificates, annotations.
enum ManifestValidator {
    static func validate(_ manifests: inout Manifests, now: Int) {
        var diagnostics: [Diagnostic] = []
        checkDuplicates(manifests, &diagnostics)
        checkSecrets(manifests, now: now, &diagnostics)
        checkEndpointSlices(manifests, &diagnostics)
        checkIngressClasses(manifests, &diagnostics)
        checkIngresses(manifests, &diagnostics)
        checkFronts(manifests, &diagnostics)
        checkPorticoAnnotations(manifests, &diagnostics)
        manifests.diagnostics += diagnostics
    }

    private static func checkDuplicates(_ manifests: Manifests, _ diagnostics: inout [Diagnostic]) {
        var first: [ResourceID: SourceLocation] = [:]
        for (id, location) in manifests.identities {
            if let earlier = first[id] {
                diagnostics.append(
                    .error(at: location, "\(id): defined twice; the first definition is at \(earlier)")
                )
            } else {
                first[id] = location
            }
        }
    }

    private static func checkSecrets(_ manifests: Manifests, now: Int, _ diagnostics: inout [Diagnostic]) {
        for secret in manifests.secrets where secret.type == Secret.tlsType {
            let subject = "Secret \(secret.metadata.key)"
            let location = { (key: String) in secret.dataLocations[key] ?? secret.metadata.location }
            guard let chain = secret.data["tls.crt"] else {
                diagnostics.append(
                    .error(
                        at: secret.metadata.location,
                        "\(subject): data[tls.crt]: required for type kubernetes.io/tls"
                    )
                )
                continue
            }
            guard let key = secret.data["tls.key"] else {
                diagnostics.append(
                    .error(
                        at: secret.metadata.location,
                        "\(subject): data[tls.key]: required for type kubernetes.io/tls"
                    )
                )
                continue
            }
            switch CertificateInspector.summary(ofChain: chain) {
            case .failure(let problem):
                diagnostics.append(.error(at: location("tls.crt"), "\(subject): data[tls.crt] \(problem)"))
                continue
            case .success(let summary):
                let days = (summary.notValidAfter - now) / 86_400
                if summary.notValidAfter < now {
                    diagnostics.append(
                        .error(
                            at: location("tls.crt"),
                            "\(subject): data[tls.crt]: the certificate expired \(-days) days ago; renew it"
                        )
                    )
                } else if summary.notValidAfter - now < 14 * 86_400 {
                    diagnostics.append(
                        .warning(
                            at: location("tls.crt"),
                            "\(subject): data[tls.crt]: the certificate expires in \(days) days; renew it soon"
                        )
                    )
                }
                if summary.notValidBefore > now {
                    diagnostics.append(
                        .warning(at: location("tls.crt"), "\(subject): data[tls.crt]: the certificate is not valid yet")
                    )
                }
            }
            if let problem = CertificateInspector.checkPair(chain: chain, key: key) {
                let field = problem == .keyMismatch || "\(problem)".contains("private key") ? "tls.key" : "tls.crt"
                diagnostics.append(.error(at: location(field), "\(subject): data[\(field)]: \(problem)"))
            }
        }
    }

    private static func checkEndpointSlices(_ manifests: Manifests, _ diagnostics: inout [Diagnostic]) {
        for slice in manifests.endpointSlices {
            guard let serviceName = slice.serviceName else { continue }
            if manifests.service(namespace: slice.metadata.namespace, name: serviceName) == nil {
                diagnostics.append(
                    .warning(
                        at: slice.metadata.location,
                        "EndpointSlice \(slice.metadata.key): metadata.labels[kubernetes.io/service-name]: no Service \"\(slice.metadata.namespace)/\(serviceName)\"; these endpoints are unused"
                    )
                )
            }
        }
    }

    private static func checkIngressClasses(_ manifests: Manifests, _ diagnostics: inout [Diagnostic]) {
        let defaults = manifests.ingressClasses.filter {
            $0.isDefault && $0.controller == IngressClass.porticoController
        }
        if defaults.count > 1 {
            for ingressClass in defaults.dropFirst() {
                diagnostics.append(
                    .warning(
                        at: ingressClass.metadata.location,
                        "IngressClass \(ingressClass.metadata.name): several Portico IngressClasses are marked default; Ingresses without a class go to \"\(defaults[0].metadata.name)\""
                    )
                )
            }
        }
    }

    private static func checkIngresses(_ manifests: Manifests, _ diagnostics: inout [Diagnostic]) {
        for ingress in manifests.ingresses {
            let subject = "Ingress \(ingress.metadata.key)"
            guard manifests.servingClass(of: ingress) != nil else {
                if let requested = ingress.requestedClass,
                    !manifests.ingressClasses.contains(where: { $0.metadata.name == requested })
                {
                    diagnostics.append(
                        .warning(
                            at: ingress.metadata.location,
                            "\(subject): spec.ingressClassName: no IngressClass \"\(requested)\"; this Ingress is not served. Declare an IngressClass \"\(requested)\" with spec.controller: \(IngressClass.porticoController)"
                        )
                    )
                } else if ingress.requestedClass == nil {
                    diagnostics.append(
                        .warning(
                            at: ingress.metadata.location,
                            "\(subject): no ingressClassName and no default Portico IngressClass; this Ingress is not served"
                        )
                    )
                }
                continue
            }
            var backends = ingress.rules.flatMap { $0.paths.map(\.backend) }
            if let backend = ingress.defaultBackend { backends.append(backend) }
            for backend in backends {
                checkBackend(backend, of: ingress, manifests, &diagnostics)
            }
            for tls in ingress.tls {
                checkTLS(tls, of: ingress, manifests, &diagnostics)
            }
            let (policy, annotationDiagnostics) = IngressAnnotations.policy(
                for: ingress.metadata,
                hasTLS: !ingress.tls.isEmpty
            )
            diagnostics += annotationDiagnostics
            if let clientCertificate = policy.clientCertificate, !clientCertificate.secret.isEmpty {
                let parts = clientCertificate.secret.split(separator: "/").map(String.init)
                let location = ingress.metadata.location(ofAnnotation: IngressAnnotations.prefix + "auth-tls-secret")
                if let secret = manifests.secret(namespace: parts[0], name: parts[1]) {
                    if let ca = secret.data["ca.crt"] {
                        if case .failure(let problem) = CertificateInspector.summary(ofChain: ca) {
                            diagnostics.append(
                                .error(
                                    at: location,
                                    "\(subject): auth-tls-secret \"\(clientCertificate.secret)\": ca.crt \(problem)"
                                )
                            )
                        }
                    } else {
                        diagnostics.append(
                            .error(
                                at: location,
                                "\(subject): auth-tls-secret \"\(clientCertificate.secret)\" has no ca.crt key"
                            )
                        )
                    }
                } else {
                    diagnostics.append(
                        .error(at: location, "\(subject): auth-tls-secret: no Secret \"\(clientCertificate.secret)\"")
                    )
                }
            }
        }
    }

    private static func checkBackend(
        _ backend: Ingress.Backend,
        of ingress: Ingress,
        _ manifests: Manifests,
        _ diagnostics: inout [Diagnostic]
    ) {
        let subject = "Ingress \(ingress.metadata.key)"
        guard let reference = backend.service else {
            diagnostics.append(
                .warning(
                    at: backend.field.location,
                    "\(subject): \(backend.field.path).resource: resource backends are not supported; requests get 503"
                )
            )
            return
        }
        let namespace = ingress.metadata.namespace
        guard let service = manifests.service(namespace: namespace, name: reference.name) else {
            diagnostics.append(
                .error(
                    at: backend.field.location,
                    "\(subject): \(backend.field.path).service.name: no Service \"\(namespace)/\(reference.name)\"; an Ingress backend must name a Service in the Ingress's namespace"
                )
            )
            return
        }
        guard service.port(matching: reference.port) != nil else {
            let available = service.ports.map { port in port.name.map { "\($0) (\(port.port))" } ?? "\(port.port)" }
            let field = if case .int = reference.port { "number" } else { "name" }
            diagnostics.append(
                .error(
                    at: backend.field.location,
                    "\(subject): \(backend.field.path).service.port.\(field): Service \"\(service.metadata.key)\" has no port \(reference.port); it has \(available.isEmpty ? "none" : available.joined(separator: ", "))"
                )
            )
            return
        }
    }

    private static func checkTLS(
        _ tls: Ingress.TLS,
        of ingress: Ingress,
        _ manifests: Manifests,
        _ diagnostics: inout [Diagnostic]
    ) {
        let subject = "Ingress \(ingress.metadata.key)"
        guard let name = tls.secretName else { return }
        guard let secret = manifests.secret(namespace: ingress.metadata.namespace, name: name) else {
            diagnostics.append(
                .error(
                    at: tls.field.location,
                    "\(subject): \(tls.field.path).secretName: no Secret \"\(ingress.metadata.namespace)/\(name)\"; TLS Secrets must be in the Ingress's namespace"
                )
            )
            return
        }
        guard secret.type == Secret.tlsType else {
            diagnostics.append(
                .error(
                    at: tls.field.location,
                    "\(subject): \(tls.field.path).secretName: Secret \"\(secret.metadata.key)\" has type \(secret.type), not kubernetes.io/tls"
                )
            )
            return
        }
        guard let chain = secret.data["tls.crt"],
            case .success(let summary) = CertificateInspector.summary(ofChain: chain)
        else { return }
        for host in tls.hosts where !summary.dnsNames.contains(where: { CertificateInspector.name($0, covers: host) }) {
            diagnostics.append(
                .warning(
                    at: tls.field.location,
                    "\(subject): \(tls.field.path).hosts: \"\(host)\" is not covered by the certificate of Secret \"\(secret.metadata.key)\" (names: \(summary.dnsNames.joined(separator: ", "))); clients will see a name mismatch"
                )
            )
        }
    }

    /// Portico's own Service annotations: known names, valid values.
    private static func checkPorticoAnnotations(_ manifests: Manifests, _ diagnostics: inout [Diagnostic]) {
        for service in manifests.services {
            let subject = "Service \(service.metadata.key)"
            for (key, value) in service.metadata.annotations.sorted(by: { $0.key < $1.key })
            where key.hasPrefix("portico.dev/") {
                let location = service.metadata.location(ofAnnotation: key)
                let field = "metadata.annotations[\(key)]"
                switch key {
                case Annotations.proxyProtocol:
                    if value != "v1" && value != "v2" {
                        diagnostics.append(.error(at: location, "\(subject): \(field): \"\(value)\" must be v1 or v2"))
                    } else if value == "v1" && service.ports.contains(where: { $0.protocol == .udp }) {
                        diagnostics.append(
                            .error(
                                at: location,
                                "\(subject): \(field): PROXY protocol v1 cannot carry UDP; use v2 (or split the UDP ports into their own Service)"
                            )
                        )
                    }
                case Annotations.acceptProxyProtocolFrom:
                    for item in value.split(separator: ",").map({ $0.trimmedSpaces() })
                    where CIDR(item) == nil && IPAddress(item) == nil {
                        diagnostics.append(
                            .error(
                                at: location,
                                "\(subject): \(field): \"\(item)\" is not a CIDR such as 192.168.1.1/32"
                            )
                        )
                    }
                case Annotations.defaultCertificate:
                    if let secret = manifests.secret(reference: value, defaultNamespace: service.metadata.namespace) {
                        if secret.type != Secret.tlsType {
                            diagnostics.append(
                                .error(
                                    at: location,
                                    "\(subject): \(field): Secret \"\(secret.metadata.key)\" has type \(secret.type), not kubernetes.io/tls"
                                )
                            )
                        }
                    } else {
                        diagnostics.append(.error(at: location, "\(subject): \(field): no Secret \"\(value)\""))
                    }
                case Annotations.vrrpVirtualRouterID:
                    if !(1...255).contains(Int(value) ?? 0) {
                        diagnostics.append(
                            .error(at: location, "\(subject): \(field): \"\(value)\" must be a VRID from 1 to 255")
                        )
                    }
                case Annotations.ingressClass, Annotations.vrrpPreferredNode:
                    break
                case Annotations.healthCheck, Annotations.healthCheckInterval:
                    for problem in HealthCheckSpec.problems(service.metadata.annotations)
                    where problem.annotation == key {
                        diagnostics.append(.error(at: location, "\(subject): \(field): \(problem.message)"))
                    }
                default:
                    diagnostics.append(
                        .warning(
                            at: location,
                            "\(subject): \(field): unknown Portico annotation; known ones are \(Annotations.serviceAnnotations.sorted().joined(separator: ", "))"
                        )
                    )
                }
            }
        }
    }

    /// Ingress fronts: LoadBalancer Services annotated `portico.dev/ingress-class`.
    private static func checkFronts(_ manifests: Manifests, _ diagnostics: inout [Diagnostic]) {
        for service in manifests.services {
            guard let className = service.metadata.annotations[Annotations.ingressClass] else { continue }
            let location = service.metadata.location(ofAnnotation: Annotations.ingressClass)
            let subject = "Service \(service.metadata.key)"
            if service.type != .loadBalancer {
                diagnostics.append(
                    .error(
                        at: location,
                        "\(subject): an ingress front must be type LoadBalancer, not \(service.type.rawValue)"
                    )
                )
            }
            if !manifests.ingressClasses.contains(where: {
                $0.metadata.name == className && $0.controller == IngressClass.porticoController
            }) {
                diagnostics.append(
                    .error(
                        at: location,
                        "\(subject): metadata.annotations[\(Annotations.ingressClass)]: no IngressClass \"\(className)\" with spec.controller: \(IngressClass.porticoController)"
                    )
                )
            }
            let hasCertificate =
                service.metadata.annotations[Annotations.defaultCertificate] != nil
                || manifests.ingresses.contains {
                    manifests.servingClass(of: $0)?.metadata.name == className
                        && $0.tls.contains { $0.secretName != nil }
                }
            if service.ports.contains(where: { HTTPPortKind(service: $0) == .https }) && !hasCertificate {
                // Served anyway, like ingress-nginx's fake certificate; clients will not trust it.
                diagnostics.append(
                    .warning(
                        at: location,
                        "\(subject): no certificate for the https port: it serves a self-signed \"Portico Default Certificate\" made at start (kept in the state directory when there is one), which clients do not trust; add a tls section to an Ingress of class \"\(className)\" or set \(Annotations.defaultCertificate)"
                    )
                )
            }
            if !service.ports.contains(where: { HTTPPortKind(service: $0) != nil }) {
                diagnostics.append(
                    .error(
                        at: location,
                        "\(subject): an ingress front needs a port named http or https (or appProtocol http/https)"
                    )
                )
            }
        }
    }
}
