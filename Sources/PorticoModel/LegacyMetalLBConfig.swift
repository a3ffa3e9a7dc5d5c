import Yams

/// MetalLB's legacy configuration: ConfigMap `metallb-system/config`, key `config`, a YAML
/// document with `address-pools`. Positions inside it are reported in the ConfigMap's file.
enum LegacyMetalLBConfig {
    static func pools(from configMap: ConfigMap, sink outer: DiagnosticSink) -> [IPAddressPool] {
        guard let text = configMap.data["config"], let embedded = configMap.dataFields["config"] else {
            outer.warning(
                configMap.metadata.location,
                "data.config: missing; MetalLB's legacy ConfigMap keeps its pools there"
            )
            return []
        }
        let sink = DiagnosticSink(file: outer.file)
        sink.lineOffset = embedded.firstLine - 1
        sink.columnOffset = embedded.columnOffset
        sink.subject = outer.subject
        defer {
            for diagnostic in sink.diagnostics { outer.append(diagnostic) }
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, .basic)
        } catch {
            var diagnostic = ManifestLoader.yamlDiagnostic(error, file: outer.file)
            diagnostic.location.line += sink.lineOffset
            diagnostic.message = "data.config: " + diagnostic.message
            sink.append(diagnostic)
            return []
        }
        guard let root else { return [] }
        let document = Field(node: root, path: "data.config", sink: sink)
        guard let config = document.object(["address-pools", "peers", "bgp-communities"]) else { return [] }
        if config["peers"] != nil {
            config["peers"]?.warning("BGP peers are not supported by Portico; only layer 2 pools are announced")
        }
        var pools: [IPAddressPool] = []
        for field in config.list("address-pools") {
            guard
                let poolObject = field.object([
                    "name", "protocol", "addresses", "auto-assign", "avoid-buggy-ips", "bgp-advertisements",
                ]),
                let name = poolObject.string("name", required: true)
            else { continue }
            let protocolName = poolObject.string("protocol", required: true) ?? "layer2"
            if protocolName != "layer2" && protocolName != "bgp" {
                poolObject["protocol"]?.error("\"\(protocolName)\" is not a protocol; use layer2 or bgp")
            } else if protocolName == "bgp" {
                poolObject["protocol"]?.warning(
                    "BGP is not supported by Portico; addresses of this pool are allocated but not announced"
                )
            }
            var pool = IPAddressPool(
                metadata: ObjectMeta(name: name, namespace: "metallb-system", location: field.location),
                addresses: [],
                autoAssign: poolObject.bool("auto-assign") ?? true,
                avoidBuggyIPs: poolObject.bool("avoid-buggy-ips") ?? false,
                legacyProtocol: protocolName
            )
            for address in poolObject.list("addresses") {
                guard let value = address.string() else { continue }
                pool.addresses.append(value)
                pool.addressFields.append(FieldReference(path: address.path, location: address.location))
            }
            if poolObject["addresses"] == nil {
                poolObject.missing("addresses", "a pool needs at least one range or CIDR")
            }
            pools.append(pool)
        }
        return pools
    }
}
