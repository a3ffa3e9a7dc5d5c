public import PorticoAllocation
public import PorticoModel
import PorticoRouting

/// Computes the ``Plan`` of a set of manifests. Pure: same manifests, same plan.
public enum PlanBuilder {
    /// - Parameter previous: the allocations recorded so far (the state directory's lock).
    public static func plan(for manifests: Manifests, previous: AllocationLock = AllocationLock()) -> Plan {
        var plan = Plan()
        plan.diagnostics = manifests.diagnostics
        let addresses = allocate(manifests, previous: previous, &plan)
        buildListeners(manifests, addresses: addresses, &plan)
        buildRoutes(manifests, &plan)
        buildNetboot(manifests, &plan)
        plan.diagnostics = plan.diagnostics.sortedByLocation()
        return plan
    }

    // MARK: - addresses

    /// The IPs a Service asks for: `metallb.io/loadBalancerIPs` (or the older
    /// `metallb.universe.tf/` prefix), else `spec.loadBalancerIP`.
    public static func requestedIPs(of service: Service) -> [String] {
        if let list = metalLBAnnotation("loadBalancerIPs", of: service) {
            return list.split(separator: ",").map { String($0).trimmedSpaces() }.filter { !$0.isEmpty }
        }
        return service.loadBalancerIP.map { [$0] } ?? []
    }

    // MARK: - listeners

    static func buildListeners(_ manifests: Manifests, addresses: [String: [String]], _ plan: inout Plan) {
        var taken: [String: String] = [:]
        for service in manifests.services.sorted(by: { $0.metadata.key < $1.metadata.key }) {
            guard service.type == .loadBalancer, let ips = addresses[service.metadata.key] else { continue }
            let key = service.metadata.key
            let frontClass = service.metadata.annotations[Annotations.ingressClass]
            let proxyProtocol = service.metadata.annotations[Annotations.proxyProtocol]
            let acceptProxyFrom =
                service.metadata.annotations[Annotations.acceptProxyProtocolFrom]?.split(separator: ",")
                .map { $0.trimmedSpaces() }.filter { !$0.isEmpty } ?? []
            var frontListeners: [Listener] = []
            for ip in ips {
                for port in service.ports {
                    if port.protocol == .sctp {
                        plan.diagnostics.append(
                            .warning(
                                at: port.field.location,
                                "Service \(key): \(port.field.path): SCTP is not forwarded by Portico"
                            )
                        )
                        continue
                    }
                    let socket = "\(ip) \(port.port)/\(port.protocol.rawValue)"
                    if let owner = taken[socket], owner != key {
                        plan.diagnostics.append(
                            .error(
                                at: port.field.location,
                                "Service \(key): \(port.field.path): port \(port.port)/\(port.protocol.rawValue) on \(ip) is already used by Service \(owner); two Services cannot share an address and port"
                            )
                        )
                        continue
                    }
                    taken[socket] = key
                    if frontClass != nil, let kind = HTTPPortKind(service: port) {
                        let listener = Listener(
                            address: ip,
                            port: port.port,
                            protocol: "TCP",
                            kind: kind == .http ? .http : .https,
                            service: key,
                            acceptProxyProtocolFrom: acceptProxyFrom
                        )
                        frontListeners.append(listener)
                        plan.listeners.append(listener)
                    } else {
                        let endpoints = EndpointResolver.endpoints(of: service, port: port, in: manifests)
                        plan.listeners.append(
                            Listener(
                                address: ip,
                                port: port.port,
                                protocol: port.protocol.rawValue,
                                kind: port.protocol == .udp ? .udp : .tcp,
                                service: key,
                                servicePort: port.port,
                                endpoints: endpoints,
                                proxyProtocol: proxyProtocol,
                                acceptProxyProtocolFrom: acceptProxyFrom
                            )
                        )
                    }
                }
            }
            if let frontClass, !frontListeners.isEmpty {
                plan.fronts.append(
                    IngressFront(
                        service: key,
                        ingressClass: frontClass,
                        listeners: frontListeners,
                        defaultCertificate: defaultCertificate(of: service, manifests)
                    )
                )
            }
        }
    }

    /// The Secret named by `portico.dev/default-certificate` (`namespace/name` or a name in
    /// the Service's namespace); problems with it are reported by validation.
    static func defaultCertificate(of service: Service, _ manifests: Manifests) -> ServedCertificate? {
        guard let reference = service.metadata.annotations[Annotations.defaultCertificate],
            let secret = manifests.secret(reference: reference, defaultNamespace: service.metadata.namespace),
            secret.type == Secret.tlsType, let chain = secret.data["tls.crt"], let key = secret.data["tls.key"],
            case .success(let summary) = CertificateInspector.summary(ofChain: chain)
        else { return nil }
        return ServedCertificate(
            secret: secret.metadata.key,
            hosts: [],
            dnsNames: summary.dnsNames,
            chainPEM: chain,
            keyPEM: key
        )
    }

    // MARK: - routes

    /// Served Ingresses ordered oldest first: creation time (unset counts as newest), then
    /// namespace/name. The first of two Ingresses claiming the same host and path wins.
    static func precedenceOrder(_ ingresses: [Ingress]) -> [Ingress] {
        ingresses.sorted {
            let left = $0.metadata.creationTimestamp ?? Int.max
            let right = $1.metadata.creationTimestamp ?? Int.max
            return left != right ? left < right : $0.metadata.key < $1.metadata.key
        }
    }

    static func buildRoutes(_ manifests: Manifests, _ plan: inout Plan) {
        var byClass: [String: [Ingress]] = [:]
        for ingress in manifests.ingresses {
            guard let servingClass = manifests.servingClass(of: ingress) else { continue }
            byClass[servingClass.metadata.name, default: []].append(ingress)
        }
        for (className, ingresses) in byClass.sorted(by: { $0.key < $1.key }) {
            var rules: [RouteRule<BackendRoute>] = []
            var origins: [(ingress: String, field: FieldReference)] = []
            var defaults: [(BackendRoute, Ingress, FieldReference)] = []
            var certificates: [ServedCertificate] = []
            var authorities: [ClientAuthority] = []
            for ingress in precedenceOrder(ingresses) {
                let (policy, _) = IngressAnnotations.policy(for: ingress.metadata, hasTLS: !ingress.tls.isEmpty)
                if let authority = ClientAuthority.of(ingress, policy: policy, manifests) {
                    authorities.append(authority)
                }
                for rule in ingress.rules {
                    for path in rule.paths {
                        var route = backendRoute(path.backend, of: ingress, policy: policy, manifests)
                        route.path = path.path
                        let pathType = PathType(rawValue: path.pathType) ?? .prefix
                        rules.append(
                            RouteRule(
                                host: HostPattern(rule.host),
                                path: path.path,
                                pathType: pathType,
                                target: route,
                                // ingress-nginx: rewrite-target implies use-regex.
                                regex: policy.useRegex || policy.rewriteTarget != nil
                            )
                        )
                        origins.append((ingress.metadata.key, path.field))
                    }
                }
                if let backend = ingress.defaultBackend {
                    defaults.append(
                        (backendRoute(backend, of: ingress, policy: policy, manifests), ingress, backend.field)
                    )
                }
                certificates += servedCertificates(of: ingress, manifests)
            }
            let table = RouteTable(rules: rules, defaultTarget: defaults.first?.0)
            for (index, message) in table.invalidPatterns {
                let origin = origins[index]
                plan.diagnostics.append(
                    .error(
                        at: origin.field.location,
                        "Ingress \(origin.ingress): \(origin.field.path): \"\(rules[index].path)\" is not a valid regular expression (its host uses use-regex or rewrite-target, so every non-Exact path of the host is one): \(message)"
                    )
                )
            }
            for conflict in table.conflicts {
                let loser = origins[conflict.loser]
                let rule = rules[conflict.loser]
                plan.diagnostics.append(
                    .warning(
                        at: loser.field.location,
                        "Ingress \(loser.ingress): \(loser.field.path): host \"\(rule.host.text.isEmpty ? "*" : rule.host.text)\" path \"\(rule.path)\" is already routed by the older Ingress \(origins[conflict.winner].ingress); this path is ignored"
                    )
                )
            }
            for (_, ingress, field) in defaults.dropFirst() {
                plan.diagnostics.append(
                    .warning(
                        at: field.location,
                        "Ingress \(ingress.metadata.key): \(field.path): the default backend of the older Ingress \(defaults[0].1.metadata.key) is used for class \(className); this one is ignored"
                    )
                )
            }
            plan.routeTables[className] = table
            plan.certificates[className] = certificates
            plan.clientAuthorities[className] = authorities
            reportClientAuthorityConflicts(authorities, manifests, &plan)
        }
    }

    /// A host can have one client certificate authority (its TLS context is chosen by SNI). The
    /// oldest Ingress's wins; the routes of a younger one that asks for another authority on the
    /// same host answer 421, and a rule without a host cannot be reached through any SNI at all.
    static func reportClientAuthorityConflicts(
        _ authorities: [ClientAuthority],
        _ manifests: Manifests,
        _ plan: inout Plan
    ) {
        var owner: [String: ClientAuthority] = [:]
        for authority in authorities {
            let ingress = manifests.ingresses.first { $0.metadata.key == authority.ingress }
            let location = ingress?.metadata.location(
                ofAnnotation: IngressAnnotations.prefix + "auth-tls-verify-client"
            )
            for host in authority.hosts {
                let key = host.lowercased()
                if let first = owner[key] {
                    if first.id != authority.id, let location {
                        plan.diagnostics.append(
                            .warning(
                                at: location,
                                "Ingress \(authority.ingress): host \"\(host)\" already verifies client certificates with \(first.secret.isEmpty ? first.mode : first.secret)\(first.secret == authority.secret && first.mode == authority.mode ? " at auth-tls-verify-depth \(first.depth)" : "") (Ingress \(first.ingress), older); requests for this Ingress's routes on it get 421"
                            )
                        )
                    }
                } else {
                    owner[key] = authority
                }
            }
            if let ingress, let location,
                ingress.rules.contains(where: { $0.host.isEmpty }) || ingress.defaultBackend != nil
            {
                plan.diagnostics.append(
                    .warning(
                        at: location,
                        "Ingress \(authority.ingress): auth-tls-verify-client applies to named hosts only (the TLS context is chosen by SNI); its rules without a host answer 421 over HTTPS and 403 over HTTP"
                    )
                )
            }
        }
    }

    static func backendRoute(
        _ backend: Ingress.Backend,
        of ingress: Ingress,
        policy: IngressPolicy,
        _ manifests: Manifests
    ) -> BackendRoute {
        let namespace = ingress.metadata.namespace
        guard let reference = backend.service else {
            return BackendRoute(
                ingress: ingress.metadata.key,
                service: nil,
                port: backend.resource ?? "",
                endpoints: [],
                policy: policy
            )
        }
        var endpoints: [String] = []
        let service = manifests.service(namespace: namespace, name: reference.name)
        if let service, let port = service.port(matching: reference.port) {
            endpoints = EndpointResolver.endpoints(of: service, port: port, in: manifests)
        }
        return BackendRoute(
            ingress: ingress.metadata.key,
            service: "\(namespace)/\(reference.name)",
            port: reference.port.description,
            endpoints: endpoints,
            policy: policy,
            healthCheck: service.flatMap { HealthCheckSpec.of($0.metadata.annotations) }
        )
    }

    static func servedCertificates(of ingress: Ingress, _ manifests: Manifests) -> [ServedCertificate] {
        var result: [ServedCertificate] = []
        for tls in ingress.tls {
            guard let name = tls.secretName,
                let secret = manifests.secret(namespace: ingress.metadata.namespace, name: name),
                secret.type == Secret.tlsType,
                let chain = secret.data["tls.crt"], let key = secret.data["tls.key"],
                case .success(let summary) = CertificateInspector.summary(ofChain: chain)
            else { continue }
            result.append(
                ServedCertificate(
                    secret: secret.metadata.key,
                    hosts: tls.hosts,
                    dnsNames: summary.dnsNames,
                    chainPEM: chain,
                    keyPEM: key
                )
            )
        }
        return result
    }
}
