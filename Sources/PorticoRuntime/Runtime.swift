import Foundation
public import Logging
import Metrics
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
public import PorticoHTTP
import PorticoL4
import PorticoModel
public import PorticoPlan
public import Prometheus
public import ServiceLifecycle
import UnixSignals

/// How `portico serve` runs.
public struct RuntimeOptions: Sendable {
    public var paths: [String]
    public var stateDirectory: String?
    public var node: String
    public var adminHost: String
    public var adminPort: Int
    /// How often the manifest files are checked for changes.
    public var pollInterval: Duration
    /// How long in-flight requests may take to finish on shutdown.
    public var drainTimeout: TimeAmount
    /// A line per HTTP request, when set.
    public var accessLog: AccessLog?
    /// This node for the virtual-IP election; nil runs no virtual routers.
    public var virtualIPNode: VirtualIPNode?
    /// Unicast VRRP peers (networks without multicast); empty for multicast.
    public var vrrpPeers: [String] = []
    /// Plain-HTTP listeners are served by the HTTP fast lane (Linux; see
    /// ``HTTPEngine/init(group:logger:metricsFactory:fastLane:)``).
    public var fastLane = true

    public init(
        paths: [String],
        stateDirectory: String? = nil,
        node: String = "",
        adminHost: String = "127.0.0.1",
        adminPort: Int = 9090,
        pollInterval: Duration = .seconds(1),
        drainTimeout: TimeAmount = .seconds(10),
        accessLog: AccessLog? = nil,
        virtualIPNode: VirtualIPNode? = nil,
        vrrpPeers: [String] = [],
        fastLane: Bool = true
    ) {
        self.paths = paths
        self.stateDirectory = stateDirectory
        self.node = node.isEmpty ? ProcessInfo.processInfo.hostName : node
        self.adminHost = adminHost
        self.adminPort = adminPort
        self.pollInterval = pollInterval
        self.drainTimeout = drainTimeout
        self.accessLog = accessLog
        self.virtualIPNode = virtualIPNode
        self.vrrpPeers = vrrpPeers
        self.fastLane = fastLane
    }
}

public enum RuntimeError: Error, CustomStringConvertible {
    case invalidConfiguration(errors: Int)

    public var description: String {
        switch self {
        case .invalidConfiguration(let errors):
            return "the manifests have \(errors) errors; nothing was started (run `portico check` for the list)"
        }
    }
}

/// The daemon: loads the plan, runs the data plane and the admin endpoint, reloads on
/// SIGHUP or when a manifest file changes, drains on graceful shutdown.
///
/// A reload computes a new plan; if it has errors, they are logged, counted, and the old
/// plan keeps serving. Otherwise each engine gets its new configuration: listeners that did
/// not change stay open, new requests see the new routes.
public final class PorticoRuntime: ServiceLifecycle.Service, Sendable {
    private let options: RuntimeOptions
    private let logger: Logger
    private let group: any EventLoopGroup
    private let registry: PrometheusCollectorRegistry
    private let state = NIOLockedValueBox(State())
    private let l4: L4Engine
    private let netboot: NetbootRunner
    private let virtualIPs: VirtualIPService
    private let reloads: AsyncStream<String>
    private let reloadRequests: AsyncStream<String>.Continuation

    private struct State {
        var plan: Plan?
        var planJSON: [UInt8] = Array("{}".utf8)
        var engines: [String: HTTPEngine] = [:]
        var admin: AdminServer?
        /// The self-signed default certificate of the state directory, once read or made.
        var selfSigned: TLSCertificate?
    }

    public init(
        options: RuntimeOptions,
        group: any EventLoopGroup,
        registry: PrometheusCollectorRegistry,
        logger: Logger
    ) {
        self.options = options
        self.group = group
        self.registry = registry
        self.logger = logger
        self.l4 = L4Engine(group: group, logger: logger)
        self.netboot = NetbootRunner(stateDirectory: options.stateDirectory, group: group, logger: logger)
        self.virtualIPs = VirtualIPService(
            node: options.virtualIPNode?.name ?? options.node,
            peers: options.vrrpPeers,
            logger: logger.with("component", "vrrp")
        )
        (reloads, reloadRequests) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The admin endpoint's bound address, once started.
    public var adminAddress: SocketAddress? { state.withLockedValue { $0.admin?.localAddress } }

    /// Asks for a reload (as SIGHUP does).
    public func requestReload(reason: String) {
        reloadRequests.yield(reason)
    }

    // MARK: - planning

    func computePlan() -> Plan {
        let manifests = ManifestLoader.load(paths: options.paths)
        var plan: Plan
        if let stateDirectory = options.stateDirectory {
            let directory = StateDirectory(path: stateDirectory)
            let (lock, problems) = directory.readLock()
            plan = PlanBuilder.plan(for: manifests, previous: lock)
            plan.diagnostics = problems + plan.diagnostics
        } else {
            plan = PlanBuilder.plan(for: manifests)
        }
        if let node = options.virtualIPNode {
            VirtualIPPlanner.addVirtualIPs(to: &plan, manifests: manifests, node: node)
        }
        return plan
    }

    private func log(_ plan: Plan) {
        for diagnostic in plan.diagnostics {
            let metadata: Logger.Metadata = [
                "file": "\(diagnostic.location.file)", "line": "\(diagnostic.location.line)",
            ]
            if diagnostic.severity == .error {
                logger.error("\(diagnostic.message)", metadata: metadata)
            } else {
                logger.warning("\(diagnostic.message)", metadata: metadata)
            }
        }
    }

    /// Applies a valid plan: engines per class are created, reconfigured or shut down.
    private func apply(_ plan: Plan) async throws {
        var configurations = PlanApplication.engineConfigurations(plan)
        for className in configurations.keys { configurations[className]?.accessLog = options.accessLog }
        for (className, configuration) in configurations
        where configuration.listeners.contains(where: { $0.kind == .https }) && configuration.certificates.isEmpty
            && configuration.defaultCertificate == nil
        {
            // Without a state directory the engine uses the process's own self-signed certificate.
            configurations[className]?.defaultCertificate = self.storedSelfSignedCertificate()
        }
        var engines = state.withLockedValue { $0.engines }
        for (className, engine) in engines where configurations[className] == nil {
            await engine.shutdown(gracePeriod: options.drainTimeout)
            engines[className] = nil
        }
        for (className, configuration) in configurations.sorted(by: { $0.key < $1.key }) {
            let engine =
                engines[className]
                ?? HTTPEngine(
                    group: group,
                    logger: logger.with("ingressClass", className),
                    fastLane: options.fastLane
                )
            try await engine.apply(configuration)
            engines[className] = engine
            logger.info(
                "ingress class serving",
                metadata: [
                    "ingressClass": "\(className)",
                    "listeners": "\(configuration.listeners.map { "\($0.address):\($0.port)/\($0.kind)" })",
                    "routes": "\(configuration.routes.rules.count)",
                ]
            )
        }
        let l4Configuration = PlanApplication.l4Configuration(plan)
        try await l4.apply(l4Configuration)
        if !l4Configuration.tcp.isEmpty || !l4Configuration.udp.isEmpty {
            logger.info(
                "forwarding",
                metadata: ["tcp": "\(l4Configuration.tcp.count)", "udp": "\(l4Configuration.udp.count)"]
            )
        }
        try await netboot.apply(plan.netboot?.configuration)
        if let lock = plan.lock, let stateDirectory = options.stateDirectory {
            do {
                try StateDirectory(path: stateDirectory).writeLock(lock)
            } catch {
                logger.error("cannot record allocations", metadata: ["error": "\(error)"])
            }
        }
        virtualIPs.apply(plan.virtualIPs)
        let json = Self.encode(plan)
        state.withLockedValue {
            $0.engines = engines
            $0.plan = plan
            $0.planJSON = json
        }
        recordGauges(plan)
    }

    /// The state directory's self-signed default certificate (read or made once, then kept
    /// in memory until it nears its end); nil without a state directory, or when it cannot be
    /// written (the engine then uses a self-signed certificate of this process).
    private func storedSelfSignedCertificate() -> TLSCertificate? {
        guard let path = options.stateDirectory else { return nil }
        if let kept = state.withLockedValue({ $0.selfSigned }), SelfSignedCertificate.problem(with: kept) == nil {
            return kept
        }
        do {
            let certificate = try StoredDefaultCertificate.load(from: StateDirectory(path: path), logger: logger)
            state.withLockedValue { $0.selfSigned = certificate }
            return certificate
        } catch {
            logger.error(
                "cannot keep the self-signed default certificate in the state directory; this process makes its own",
                metadata: ["error": "\(error)"]
            )
            return nil
        }
    }

    private static func encode(_ plan: Plan) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(PlanDocument(plan)))) ?? Array("{}".utf8)
    }

    private func recordGauges(_ plan: Plan) {
        let errors = plan.diagnostics.filter { $0.severity == .error }.count
        Gauge(label: "portico_plan_diagnostics", dimensions: [("severity", "error")]).record(errors)
        Gauge(label: "portico_plan_diagnostics", dimensions: [("severity", "warning")])
            .record(plan.diagnostics.count - errors)
        Gauge(label: "portico_allocation_failures").record(plan.failures.count)
        Gauge(label: "portico_listeners").record(plan.listeners.count)
        for failure in plan.failures {
            logger.warning(
                "no address for Service",
                metadata: ["service": "\(failure.service)", "reason": "\(failure.reason)"]
            )
        }
    }

    /// One reload: a new plan replaces the old only when it is valid and applies cleanly.
    func reload(reason: String) async {
        let plan = computePlan()
        let errors = plan.diagnostics.filter { $0.severity == .error }.count
        guard errors == 0 else {
            log(plan)
            logger.error(
                "reload refused: the new manifests have errors; the previous configuration keeps serving",
                metadata: ["reason": "\(reason)", "errors": "\(errors)"]
            )
            Counter(label: "portico_config_reloads_total", dimensions: [("result", "invalid")]).increment()
            Gauge(label: "portico_config_last_reload_successful").record(0)
            return
        }
        do {
            try await apply(plan)
            logger.info("configuration reloaded", metadata: ["reason": "\(reason)"])
            Counter(label: "portico_config_reloads_total", dimensions: [("result", "success")]).increment()
            Gauge(label: "portico_config_last_reload_successful").record(1)
        } catch {
            logger.error(
                "reload failed while applying; part of the new configuration may be in force",
                metadata: ["error": "\(error)"]
            )
            Counter(label: "portico_config_reloads_total", dimensions: [("result", "failure")]).increment()
            Gauge(label: "portico_config_last_reload_successful").record(0)
        }
    }

    // MARK: - running

    public func run() async throws {
        let plan = computePlan()
        log(plan)
        guard plan.isValid else {
            throw RuntimeError.invalidConfiguration(errors: plan.diagnostics.filter { $0.severity == .error }.count)
        }
        try await apply(plan)
        let admin: AdminServer
        do {
            admin = try await AdminServer.start(
                host: options.adminHost,
                port: options.adminPort,
                group: group,
                content: self
            )
        } catch {
            virtualIPs.shutdown()
            throw error
        }
        state.withLockedValue { $0.admin = admin }
        logger.info("admin endpoint listening", metadata: ["address": "\(admin.localAddress.map { "\($0)" } ?? "?")"])
        Gauge(label: "portico_config_last_reload_successful").record(1)

        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask { await self.watchSignals() }
                tasks.addTask { await self.watchFiles() }
                for await reason in reloads {
                    await reload(reason: reason)
                }
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            // Resign first: a backup takes the addresses after its skew time, not a timeout.
            self.virtualIPs.shutdown()
            self.reloadRequests.finish()
        }
        virtualIPs.shutdown()
        logger.info("shutting down: draining connections", metadata: ["timeout": "\(options.drainTimeout)"])
        let engines = state.withLockedValue { $0.engines }
        await withTaskGroup(of: Void.self) { tasks in
            for engine in engines.values {
                tasks.addTask { await engine.shutdown(gracePeriod: self.options.drainTimeout) }
            }
            tasks.addTask { await self.l4.shutdown(gracePeriod: self.options.drainTimeout) }
            tasks.addTask { await self.netboot.stop() }
        }
        await admin.close()
        logger.info("stopped")
    }

    private func watchSignals() async {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals {
            if Task.isCancelled { return }
            requestReload(reason: "SIGHUP")
        }
    }

    /// Polls the manifest files' names, sizes and modification times.
    private func watchFiles() async {
        var last = ManifestFingerprint(paths: options.paths)
        while !Task.isCancelled {
            try? await Task.sleep(for: options.pollInterval)
            let current = ManifestFingerprint(paths: options.paths)
            if current != last {
                last = current
                requestReload(reason: "manifest files changed")
            }
        }
    }
}

extension PorticoRuntime: AdminContent {
    public func isHealthy() -> Bool { true }

    public func isReady() -> Bool { state.withLockedValue { $0.plan != nil } }

    public func planJSON() -> [UInt8] {
        let (plan, json) = state.withLockedValue { ($0.plan, $0.planJSON) }
        guard var plan, !plan.virtualIPs.isEmpty else { return json }
        plan.virtualIPs = virtualIPs.annotate(plan.virtualIPs)
        return Self.encode(plan)
    }

    public func metricsText() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

/// Names, sizes and modification times of the manifest files: a change means reload.
struct ManifestFingerprint: Equatable {
    var entries: [String: [Int]] = [:]

    init(paths: [String]) {
        for file in ManifestLoader.manifestFiles(paths) {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: file) else { continue }
            let size = (attributes[.size] as? Int) ?? -1
            let modified = (attributes[.modificationDate] as? Date).map { Int($0.timeIntervalSince1970 * 1000) } ?? -1
            entries[file] = [size, modified]
        }
    }
}

extension Logger {
    func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}
