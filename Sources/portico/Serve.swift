import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOPosix
import PorticoHTTP
import PorticoRuntime
import Prometheus
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Portico: serve the plan, reload on SIGHUP or file changes, drain on SIGTERM."
    )

    @OptionGroup var manifests: ManifestPaths
    @OptionGroup var vrrp: VRRPOptions

    @Option(help: "Name of this node (for address announcement).")
    var node: String = ProcessInfo.processInfo.hostName

    @Option(help: "Admin endpoint ADDRESS:PORT serving /healthz, /readyz, /plan and /metrics.")
    var admin: String = "127.0.0.1:9090"

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: "Seconds in-flight requests get to finish on shutdown.")
    var drainTimeout: Int = 10

    @Option(help: "Write a line per HTTP request to this file, or - for standard output (default: no access log).")
    var accessLog: String?

    @Option(help: "Access log format: json or logfmt.")
    var accessLogFormat: String = "json"

    @Flag(
        inversion: .prefixedNo,
        help: """
            Plain-HTTP listeners are served from Portico's own epoll loop (the fast lane, Linux, \
            docs/architecture.md); --no-fast-lane serves them through the NIO engine alone.
            """
    )
    var fastLane = true

    func validate() throws {
        guard adminAddress != nil else { throw ValidationError("--admin must be ADDRESS:PORT, e.g. 127.0.0.1:9090") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard AccessLog.Format(rawValue: accessLogFormat) != nil else {
            throw ValidationError("--access-log-format must be json or logfmt, not \(accessLogFormat)")
        }
    }

    var adminAddress: (String, Int)? {
        guard let colon = admin.lastIndex(of: ":"), let port = Int(admin[admin.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = admin[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (String(host), port)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "portico")
        let (adminHost, adminPort) = adminAddress ?? ("127.0.0.1", 9090)
        let requestLog: AccessLog?
        do {
            let format = AccessLog.Format(rawValue: accessLogFormat) ?? .json
            requestLog = try accessLog.map { try AccessLog(path: $0, format: format) }
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        defer { requestLog?.close() }
        let runtime = PorticoRuntime(
            options: RuntimeOptions(
                paths: manifests.paths,
                stateDirectory: manifests.stateDir,
                node: node,
                adminHost: adminHost,
                adminPort: adminPort,
                drainTimeout: .seconds(Int64(drainTimeout)),
                accessLog: requestLog,
                virtualIPNode: vrrp.node(named: node),
                vrrpPeers: vrrp.peers,
                fastLane: fastLane
            ),
            group: MultiThreadedEventLoopGroup.singleton,
            registry: registry,
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch let error as RuntimeError {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}
