import ArgumentParser
import Foundation
import PorticoModel
import PorticoNetboot
import PorticoPlan

/// The `portico` command.
@main
struct Portico: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "portico",
        abstract: "The front door of a self-hosted cloud: virtual IPs, load balancing, ingress and network boot.",
        version: version,
        subcommands: [Check.self, PlanCommand.self, Serve.self, Version.self]
    )

    /// Exit codes are part of the contract: 0 fine, 1 invalid manifests, 2 usage error.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

struct ManifestPaths: ParsableArguments {
    @Argument(help: "Manifest files or directories (searched recursively for *.yaml and *.yml).")
    var paths: [String]

    @Option(help: "State directory holding the allocation lock (allocations.lock.json).")
    var stateDir: String?

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one manifest file or directory") }
    }

    /// Loads the manifests and the lock, and computes the plan.
    func plan() -> Plan {
        let manifests = ManifestLoader.load(paths: paths)
        guard let stateDir else { return PlanBuilder.plan(for: manifests) }
        let (lock, problems) = StateDirectory(path: stateDir).readLock()
        var plan = PlanBuilder.plan(for: manifests, previous: lock)
        plan.diagnostics = problems + plan.diagnostics
        do {
            PlanBuilder.recordInstalls(try InstallLedger(stateDirectory: stateDir).snapshot(), in: &plan)
        } catch {
            let file = (stateDir as NSString).appendingPathComponent(InstallLedger.fileName)
            plan.diagnostics.insert(.error(at: SourceLocation(file: file, line: 1, column: 1), "\(error)"), at: 0)
        }
        return plan
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate manifests. Exit 0 when valid, 1 when invalid, 2 on a usage error.",
        discussion: "Each problem is one line: FILE:LINE:COLUMN: error|warning: MESSAGE."
    )

    @OptionGroup var manifests: ManifestPaths

    @Flag(name: .customLong("quiet"), help: "Print errors only, not warnings.")
    var quiet = false

    func run() throws {
        let plan = manifests.plan()
        for diagnostic in plan.diagnostics where !(quiet && diagnostic.severity == .warning) {
            print(diagnostic)
        }
        let errors = plan.diagnostics.filter { $0.severity == .error }.count
        let warnings = plan.diagnostics.count - errors
        FileHandle.standardError.write(Data("\(errors) errors, \(warnings) warnings\n".utf8))
        if errors > 0 { throw ExitCode(1) }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print what Portico would run: listeners, routes, allocations and diagnostics."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text
        case json
    }

    @OptionGroup var manifests: ManifestPaths

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    @Option(help: "Show the virtual IPs this node would take part in (see serve's --vrrp-* options).")
    var node: String?

    @OptionGroup var vrrp: VRRPOptions

    @Flag(help: "Record the allocations in the state directory's lock (needs --state-dir and valid manifests).")
    var write = false

    func validate() throws {
        if write && manifests.stateDir == nil { throw ValidationError("--write needs --state-dir") }
    }

    func run() throws {
        var plan = manifests.plan()
        if let node {
            let loaded = ManifestLoader.load(paths: manifests.paths)
            VirtualIPPlanner.addVirtualIPs(to: &plan, manifests: loaded, node: vrrp.node(named: node))
        }
        switch format {
        case .text:
            print(PlanText.render(plan), terminator: "")
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(PlanDocument(plan))
            print(String(decoding: data, as: UTF8.self))
        }
        if !plan.isValid { throw ExitCode(1) }
        if write, let stateDir = manifests.stateDir, let lock = plan.lock {
            let directory = StateDirectory(path: stateDir)
            try directory.writeLock(lock)
            FileHandle.standardError.write(
                Data("recorded \(lock.entries.count) allocations in \(directory.lockPath)\n".utf8)
            )
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Portico's version.")

    func run() {
        print("portico \(Portico.version)")
    }
}
