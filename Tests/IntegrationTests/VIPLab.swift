#if os(Linux)
import Foundation
import Glibc

/// A bridge in its own network namespace, node namespaces plugged into it (each with `eth0`,
/// `10.77.0.11`, `.12`, ...) and a client namespace (`10.77.0.100`). Every name carries a
/// unique suffix; the namespaces are deleted when the lab goes away, also after a failure.
final class VIPLab {
    static let virtualIP = "10.77.0.200"
    static let secondVirtualIP = "10.77.0.201"
    let suffix: String
    let bridge: String
    let nodes: [String]
    let client: String

    /// Why the lab cannot run here, or nil.
    static var skipReason: String? {
        if geteuid() != 0 { return "needs root to create network namespaces (running as uid \(geteuid()))" }
        if (try? ChildProcess.run(["ip", "-V"]).status) != 0 { return "needs iproute2's `ip`" }
        if (try? ChildProcess.run(["curl", "--version"]).status) != 0 { return "needs curl" }
        return nil
    }

    init(nodeCount: Int) throws {
        let suffix = "\(getpid() % 100_000)-\(UInt16.random(in: 0...UInt16.max))"
        self.suffix = suffix
        bridge = "pvl-\(suffix)-br"
        nodes = (1...nodeCount).map { "pvl-\(suffix)-n\($0)" }
        client = "pvl-\(suffix)-c"
        var script = """
            set -e
            ip netns add \(bridge)
            ip -n \(bridge) link add br0 type bridge
            ip -n \(bridge) link set br0 up
            ip -n \(bridge) link set lo up

            """
        for (index, namespace) in (nodes + [client]).enumerated() {
            let address = namespace == client ? "10.77.0.100" : nodeAddress(index)
            script += """
                ip netns add \(namespace)
                ip link add eth0 netns \(namespace) type veth peer name p\(index) netns \(bridge)
                ip -n \(bridge) link set p\(index) master br0
                ip -n \(bridge) link set p\(index) up
                ip -n \(namespace) addr add \(address)/24 dev eth0
                ip -n \(namespace) link set eth0 up
                ip -n \(namespace) link set lo up

                """
        }
        do {
            try Self.shell(script)
        } catch {
            removeNamespaces()
            throw error
        }
    }

    deinit { removeNamespaces() }

    private func removeNamespaces() {
        for namespace in nodes + [client, bridge] {
            _ = try? ChildProcess.run(["ip", "netns", "del", namespace])
        }
    }

    func nodeAddress(_ index: Int) -> String { "10.77.0.\(11 + index)" }

    /// Whether node `index` has the virtual IP (or `address`) on its interface.
    func holds(_ index: Int, _ address: String = VIPLab.virtualIP) -> Bool {
        let output = (try? ChildProcess.run(["ip", "-n", nodes[index], "-4", "-o", "addr", "show", "dev", "eth0"]))?
            .output
        return output?.contains(" \(address)/32 ") == true
    }

    /// Cuts node `index` off the bridge (`false`) or plugs it back (`true`).
    func connect(_ index: Int, _ up: Bool) throws {
        try Self.shell("ip -n \(bridge) link set p\(index) \(up ? "up" : "down")")
    }

    /// The MAC address of node `index`'s interface.
    func mac(_ index: Int) throws -> String {
        let output = try Self.shell("ip -n \(nodes[index]) -o link show eth0")
        guard let range = output.range(of: "link/ether ") else { return "" }
        return String(output[range.upperBound...].prefix(17))
    }

    /// The MAC the client's neighbour cache has for the virtual IP, if any.
    func clientNeighbour() -> String? {
        let output = (try? ChildProcess.run(["ip", "-n", client, "neigh", "show", Self.virtualIP]))?.output ?? ""
        guard let range = output.range(of: "lladdr ") else { return nil }
        return String(output[range.upperBound...].prefix(17))
    }

    /// Runs a command inside a namespace.
    func run(in namespace: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try ChildProcess.run(["ip", "netns", "exec", namespace] + arguments)
    }

    @discardableResult
    static func shell(_ script: String) throws -> String {
        let (status, output) = try ChildProcess.run(["sh", "-c", script + " 2>&1"])
        guard status == 0 else { throw LabError.shell(script, output) }
        return output
    }

    enum LabError: Error, CustomStringConvertible {
        case shell(String, String)
        case timeout(String)

        var description: String {
            switch self {
            case .shell(let script, let output): "shell failed:\n\(script)\n\(output)"
            case .timeout(let what): "timed out: \(what)"
            }
        }
    }
}

/// One `portico serve` in a lab namespace, restartable. Its manifests name one pool, one
/// L2Advertisement and a LoadBalancer Service on the virtual IP whose port 80 forwards to this
/// node's admin endpoint, so a client reaching the VIP learns which node answered.
final class VIPNode {
    let lab: VIPLab
    let index: Int
    let name: String
    let manifests: ManifestDirectory
    let logURL: URL
    let extraArguments: [String]
    private(set) var process: ChildProcess?

    init(lab: VIPLab, index: Int, extraArguments: [String], manifest: String? = nil) throws {
        self.lab = lab
        self.index = index
        self.name = "n\(index + 1)"
        self.extraArguments = extraArguments
        let address = lab.nodeAddress(index)
        manifests = try ManifestDirectory([
            "vip.yaml": manifest
                ?? """
                apiVersion: metallb.io/v1beta1
                kind: IPAddressPool
                metadata: {name: lab, namespace: metallb-system}
                spec:
                  addresses: [\(VIPLab.virtualIP)-\(VIPLab.secondVirtualIP)]
                ---
                apiVersion: metallb.io/v1beta1
                kind: L2Advertisement
                metadata: {name: lab, namespace: metallb-system}
                spec:
                  ipAddressPools: [lab]
                  interfaces: [eth0]
                ---
                apiVersion: v1
                kind: Service
                metadata:
                  name: who
                  annotations: {metallb.io/loadBalancerIPs: \(VIPLab.virtualIP)}
                spec:
                  type: LoadBalancer
                  ports: [{name: http, port: 80}]
                ---
                apiVersion: v1
                kind: Endpoints
                metadata: {name: who}
                subsets:
                - addresses: [{ip: \(address)}]
                  ports: [{name: http, port: 9090}]
                """
        ])
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("portico-vip-\(lab.suffix)-\(name).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
    }

    deinit {
        if let process, process.isRunning { process.signal(SIGKILL) }
        process?.wait()
        try? FileManager.default.removeItem(at: logURL)
    }

    var isRunning: Bool { process?.isRunning == true }
    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func start() throws {
        process = try ChildProcess(
            [
                "ip", "netns", "exec", lab.nodes[index], PorticoProcess.binary.path, "serve", manifests.url.path,
                "--node", name, "--admin", "\(lab.nodeAddress(index)):9090", "--vrrp-interface", "eth0",
            ] + extraArguments,
            stdout: .file(logURL.path),
            stderr: .file(logURL.path)
        )
    }

    /// Waits until `/readyz` answers inside the node's namespace.
    func waitUntilReady(timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard isRunning else { throw VIPLab.LabError.shell("portico serve \(name) exited", log) }
            let result = try? lab.run(
                in: lab.nodes[index],
                [
                    "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1",
                    "http://\(lab.nodeAddress(index)):9090/readyz",
                ]
            )
            if result?.output == "200" { return }
            usleep(50_000)
        }
        throw VIPLab.LabError.timeout("\(name) ready:\n\(log)")
    }

    func kill() {
        process?.signal(SIGKILL)
        process?.wait()
    }

    func terminate() {
        process?.stop(grace: 10)
    }
}
#endif
