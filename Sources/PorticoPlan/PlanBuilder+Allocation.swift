import PorticoAllocation
import PorticoModel

/// Maps decoded manifests onto the pure allocator and its result back into the plan.
extension PlanBuilder {
    /// MetalLB annotations, `metallb.io/` winning over the older `metallb.universe.tf/`.
    static func metalLBAnnotation(_ name: String, of service: Service) -> String? {
        service.metadata.annotations["metallb.io/" + name]
            ?? service.metadata.annotations["metallb.universe.tf/" + name]
    }

    static func addressPools(_ manifests: Manifests) -> [AddressPool] {
        manifests.addressPools.map { pool in
            AddressPool(
                name: pool.metadata.name,
                addresses: pool.addresses,
                autoAssign: pool.autoAssign,
                avoidBuggyIPs: pool.avoidBuggyIPs,
                serviceAllocation: pool.serviceAllocation.map { allocation in
                    ServiceAllocation(
                        priority: allocation.priority,
                        namespaces: allocation.namespaces,
                        namespaceSelectors: allocation.namespaceSelectors,
                        serviceSelectors: allocation.serviceSelectors
                    )
                }
            )
        }
    }

    static func serviceRequest(_ service: Service) -> ServiceRequest {
        let families: [IPFamily] = service.ipFamilies.compactMap(IPFamily.init(rawValue:))
        return ServiceRequest(
            namespace: service.metadata.namespace,
            name: service.metadata.name,
            labels: service.metadata.labels,
            isLoadBalancer: service.type == .loadBalancer,
            requestedAddresses: .merge(
                annotation: metalLBAnnotation("loadBalancerIPs", of: service),
                loadBalancerIP: service.loadBalancerIP
            ),
            requestedPool: metalLBAnnotation("address-pool", of: service),
            sharingKey: metalLBAnnotation("allow-shared-ip", of: service),
            externalTrafficPolicy: service.externalTrafficPolicy == "Local" ? .local : .cluster,
            selector: service.selector,
            ports: service.ports.map { ServicePort($0.protocol, $0.port) },
            ipFamilies: families,
            ipFamilyPolicy: service.ipFamilyPolicy.flatMap(IPFamilyPolicy.init(rawValue:)) ?? .singleStack
        )
    }

    /// Allocates addresses from the pools (or, with no pool at all, takes the addresses the
    /// Services request as they are) and records the outcome in the plan.
    /// - Returns: the addresses of each LoadBalancer Service, by `namespace/name`.
    static func allocate(_ manifests: Manifests, previous: AllocationLock, _ plan: inout Plan) -> [String: [String]] {
        let pools = addressPools(manifests)
        if pools.isEmpty {
            return assignRequestedAddresses(manifests, &plan)
        }
        for problem in AddressPool.validate(pools) {
            let pool = manifests.addressPools.first { $0.metadata.name == problem.pool }
            var location = pool?.metadata.location ?? SourceLocation(file: "?", line: 1, column: 1)
            var field = problem.field
            if let pool, let open = problem.field.firstIndex(of: "["), problem.field.hasPrefix("spec.addresses["),
                let index = Int(problem.field[problem.field.index(after: open)...].dropLast()),
                index < pool.addressFields.count
            {
                location = pool.addressFields[index].location
                field = pool.addressFields[index].path
            }
            let kind = pool?.legacyProtocol == nil ? "IPAddressPool" : "MetalLB ConfigMap pool"
            plan.diagnostics.append(.error(at: location, "\(kind) \(problem.pool): \(field): \(problem.message)"))
        }
        var namespaceLabels: [String: [String: String]] = [:]
        for namespace in manifests.namespaces {
            namespaceLabels[namespace.metadata.name] = namespace.metadata.labels
        }
        let services = manifests.services.sorted { $0.metadata.key < $1.metadata.key }
        let result = Allocator.allocate(
            services: services.map(serviceRequest),
            pools: pools,
            previous: previous,
            namespaceLabels: namespaceLabels
        )
        var addresses: [String: [String]] = [:]
        for allocation in result.allocations {
            let key = allocation.service.description
            let ips = allocation.ips.map(\.description)
            addresses[key] = ips
            plan.allocations.append(Allocation(service: key, ips: ips, pool: allocation.pool, isNew: allocation.isNew))
        }
        for release in result.releases {
            plan.releases.append(
                Release(
                    service: release.service.description,
                    ips: release.ips.map(\.description),
                    reason: release.reason.description
                )
            )
        }
        for failure in result.failures {
            let key = failure.service.description
            plan.failures.append(AllocationFailure(service: key, reason: failure.reason))
            let service = services.first { $0.metadata.key == key }
            var message = "Service \(key): \(failure.reason)"
            if let explanation = failure.explanation { message += ". \(explanation)" }
            // A Service without an address does not stop the others: a warning, as MetalLB
            // leaves such a Service pending rather than refusing the whole configuration.
            // Point at what the user would change: the requested address, else the sharing key.
            let location =
                service.map { service in
                    ["metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs", "metallb.io/allow-shared-ip"]
                        .lazy.compactMap { service.metadata.annotationLocations[$0] }.first ?? service.metadata.location
                } ?? SourceLocation(file: "?", line: 1, column: 1)
            plan.diagnostics.append(.warning(at: location, message))
        }
        plan.lock = result.lock
        return addresses
    }

    /// Without pools, LoadBalancer Services get exactly the addresses they request.
    static func assignRequestedAddresses(_ manifests: Manifests, _ plan: inout Plan) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for service in manifests.services where service.type == .loadBalancer {
            let key = service.metadata.key
            let ips = requestedIPs(of: service)
            if ips.isEmpty {
                plan.failures.append(
                    AllocationFailure(
                        service: key,
                        reason:
                            "Failed to allocate IP for \"\(key)\": no available IPs (no address pool is configured and the Service requests no address; add an IPAddressPool or set metallb.io/loadBalancerIPs)"
                    )
                )
                continue
            }
            if let invalid = ips.first(where: { IPAddress($0) == nil }) {
                plan.failures.append(
                    AllocationFailure(
                        service: key,
                        reason: "Failed to allocate IP for \"\(key)\": \"\(invalid)\" is not an IP address"
                    )
                )
                plan.diagnostics.append(
                    .error(
                        at: service.metadata.location(ofAnnotation: "metallb.io/loadBalancerIPs"),
                        "Service \(key): metadata.annotations[metallb.io/loadBalancerIPs]: \"\(invalid)\" is not an IP address"
                    )
                )
                continue
            }
            result[key] = ips
            plan.allocations.append(Allocation(service: key, ips: ips, pool: "", isNew: false))
        }
        return result
    }
}
