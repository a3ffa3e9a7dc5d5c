import PorticoModel

/// The plan as a person reads it: aligned tables.
public enum PlanText {
    public static func render(_ plan: Plan) -> String {
        let document = PlanDocument(plan)
        var out = ""
        out += "Listeners (\(document.listeners.count))\n"
        out += table(
            ["ADDRESS", "PORT", "PROTO", "KIND", "SERVICE", "ENDPOINTS"],
            document.listeners.map {
                [
                    $0.address, String($0.port), $0.protocol, $0.kind.rawValue, $0.service,
                    $0.kind == .http || $0.kind == .https
                        ? "(ingress routes)" : $0.endpoints.isEmpty ? "(none)" : $0.endpoints.joined(separator: ","),
                ]
            }
        )
        out += "\nRoutes (\(document.routes.count))\n"
        out += table(
            ["CLASS", "HOST", "PATH", "TYPE", "", "SERVICE:PORT", "ENDPOINTS", "INGRESS"],
            document.routes.map {
                [
                    $0.ingressClass, $0.isDefault ? "(default)" : ($0.host.isEmpty ? "*" : $0.host),
                    $0.isDefault ? "" : $0.path, $0.pathType, "->",
                    $0.service.isEmpty ? "(unsupported resource \($0.port))" : "\($0.service):\($0.port)",
                    endpointList($0.endpoints), $0.ingress,
                ]
            }
        )
        out += "\nAllocations (\(document.allocations.count))\n"
        out += table(
            ["", "SERVICE", "IPS", "POOL"],
            document.allocations.map {
                [$0.isNew ? "+" : "", $0.service, $0.ips.joined(separator: ","), $0.pool.isEmpty ? "-" : $0.pool]
            }
                + document.releases.map { ["-", $0.service, $0.ips.joined(separator: ","), "(\($0.reason))"] }
        )
        let added = document.allocations.filter(\.isNew).count
        if added + document.releases.count > 0 {
            out += "  (+ new since the lock: \(added), - released: \(document.releases.count); record with --write)\n"
        }
        if !document.failures.isEmpty {
            out += "\nAllocation failures (\(document.failures.count))\n"
            out += document.failures.map { "  \($0.service): \($0.reason)\n" }.joined()
        }
        if let netboot = document.netboot { out += netboot.text }
        if let node = document.node {
            out += "\nVirtual IPs on node \(node) (\(document.virtualIPs.count))\n"
            out += table(
                ["VRID", "ADDRESSES", "INTERFACE", "PRIORITY", "STATE", "OWNER", "SERVICES"],
                document.virtualIPs.map {
                    [
                        String($0.virtualRouterID), $0.addresses.joined(separator: ","),
                        $0.interface.isEmpty ? "(none: --vrrp-interface)" : $0.interface, String($0.priority),
                        $0.state ?? "-", $0.owner ?? "-", $0.services.joined(separator: ","),
                    ]
                }
            )
        }
        let errors = plan.diagnostics.filter { $0.severity == .error }.count
        out += "\nDiagnostics: \(errors) errors, \(plan.diagnostics.count - errors) warnings\n"
        out += plan.diagnostics.map { "  \($0)\n" }.joined()
        return out
    }

    private static func endpointList(_ endpoints: [String]) -> String {
        endpoints.isEmpty ? "(none: 503)" : endpoints.joined(separator: ",")
    }

    /// Left-aligned columns separated by two spaces, indented by two.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        if rows.isEmpty { return "  (none)\n" }
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for row in all {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return all.map { row in
            var line = "  "
            for (index, cell) in row.enumerated() {
                line +=
                    index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 2)
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line + "\n"
        }.joined()
    }
}
