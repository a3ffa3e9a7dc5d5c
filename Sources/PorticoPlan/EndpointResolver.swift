import PorticoModel

/// Finds the ready endpoints of a Service port from EndpointSlices (or v1 Endpoints).
///
/// EndpointSlice and Endpoints ports carry the Service port's *name*; the number they hold
/// is the target port on the endpoints. An unnamed single-port Service matches unnamed ports.
enum EndpointResolver {
    static func endpoints(of service: Service, port: Service.Port, in manifests: Manifests) -> [String] {
        let namespace = service.metadata.namespace
        let name = service.metadata.name
        let wanted = port.name ?? ""
        var result: [String] = []
        let slices = manifests.endpointSlices.filter {
            $0.metadata.namespace == namespace && $0.serviceName == name
        }
        if !slices.isEmpty {
            for slice in slices.sorted(by: { $0.metadata.name < $1.metadata.name }) {
                guard
                    let slicePort = slice.ports.first(where: {
                        ($0.name ?? "") == wanted && $0.protocol == port.protocol
                    })
                else { continue }
                for endpoint in slice.endpoints where endpoint.ready {
                    result.append(hostPort(endpoint.address, slicePort.port))
                }
            }
            return unique(result)
        }
        for endpoints in manifests.endpoints
        where endpoints.metadata.namespace == namespace && endpoints.metadata.name == name {
            for subset in endpoints.subsets {
                guard
                    let subsetPort = subset.ports.first(where: {
                        ($0.name ?? "") == wanted && $0.protocol == port.protocol
                    })
                else { continue }
                for address in subset.addresses where address.ready {
                    result.append(hostPort(address.address, subsetPort.port))
                }
            }
        }
        return unique(result)
    }

    static func hostPort(_ address: String, _ port: Int) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    private static func unique(_ items: [String]) -> [String] {
        var seen: Set<String> = []
        return items.filter { seen.insert($0).inserted }
    }
}
