/// The network boot section of `portico plan --format json` and `/plan`: present only when the
/// manifests hold netboot resources.
public struct NetbootDocument: Codable, Sendable, Equatable {
    /// The boot servers, when they run.
    public struct Servers: Codable, Sendable, Equatable {
        /// The address machines reach Portico at.
        public var serverAddress: String
        /// `ADDRESS:PORT` of proxyDHCP's two sockets, TFTP and HTTP.
        public var dhcp: String
        public var bootServer: String
        public var tftp: String
        public var http: String
        /// `http://<server>:<port>`.
        public var httpBase: String
        public var assetsDirectory: String?
        public var bootLoaderDirectories: [String]
    }

    public var servers: Servers?
    public var groups: [NetbootGroupEntry]
    public var machines: [NetbootMachineEntry]

    public init(_ plan: NetbootPlan) {
        groups = plan.groups
        machines = plan.machines
        servers = plan.configuration.map {
            Servers(
                serverAddress: $0.serverAddress.description,
                dhcp: "\($0.dhcp.host):\($0.dhcp.port)",
                bootServer: "\($0.bootServer.host):\($0.bootServer.port)",
                tftp: "\($0.tftp.host):\($0.tftp.port)",
                http: "\($0.http.host):\($0.http.port)",
                httpBase: $0.httpBase,
                assetsDirectory: $0.assetsDirectory,
                bootLoaderDirectories: $0.bootLoaderDirectories
            )
        }
    }

    /// The section as text, for `portico plan`.
    public var text: String {
        var out = "\nNetwork boot\n"
        if let servers {
            out += "  server \(servers.serverAddress): proxyDHCP \(servers.dhcp) and \(servers.bootServer), "
            out += "TFTP \(servers.tftp), HTTP \(servers.http) (\(servers.httpBase))\n"
        } else {
            out += "  (servers not started: no NetbootSettings, no BootProfile, or errors)\n"
        }
        out += "\nMachine groups (\(groups.count))\n"
        out += PlanText.table(["GROUP", "SELECTOR", "PROFILE"], groups.map { [$0.name, $0.selector, $0.profile] })
        out += "\nMachines (\(machines.count))\n"
        out += PlanText.table(
            ["MACHINE", "MAC", "HOSTNAME", "GROUP", "PROFILE", "BOOT"],
            machines.map { [$0.name, $0.mac, $0.hostname ?? "-", $0.group, $0.profile, $0.boot] }
        )
        return out
    }
}
