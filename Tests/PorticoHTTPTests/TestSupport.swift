import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import PorticoHTTP
import PorticoRouting
import Testing

/// All engine tests, run one at a time: they bind sockets and one of them measures memory.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PorticoHTTPEngineTests {}

/// Shared plumbing for the engine tests.
enum TestSupport {
    static let group = MultiThreadedEventLoopGroup.singleton

    static var logger: Logger {
        var logger = Logger(label: "portico.http.test")
        logger.logLevel = .warning
        return logger
    }

    /// A route table from (host, path prefix, route) rules.
    static func routes(_ rules: [(String?, String, HTTPRoute)], defaultRoute: HTTPRoute? = nil) -> RouteTable<HTTPRoute>
    {
        RouteTable(
            rules: rules.map { RouteRule(host: HostPattern($0.0 ?? ""), path: $0.1, pathType: .prefix, target: $0.2) },
            defaultTarget: defaultRoute
        )
    }

    static func endpoint(_ upstream: TestUpstream) -> UpstreamEndpoint {
        UpstreamEndpoint(host: "127.0.0.1", port: upstream.port)
    }

    /// A port nothing listens on (bound then closed).
    static func deadPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    /// Starts an engine with `configuration` (listeners default to one plain one on an ephemeral port).
    static func withEngine(
        _ configuration: HTTPEngineConfiguration,
        metrics: (any MetricsFactory)? = nil,
        _ body: (HTTPEngine, [HTTPListener.Kind: Int]) async throws -> Void
    ) async throws {
        var configuration = configuration
        if configuration.listeners.isEmpty {
            configuration.listeners = [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)]
        }
        let engine = HTTPEngine(group: group, logger: logger, metricsFactory: metrics)
        try await engine.apply(configuration)
        var ports: [HTTPListener.Kind: Int] = [:]
        for (listener, address) in engine.boundListeners {
            ports[listener.kind] = address.port
        }
        do {
            try await body(engine, ports)
        } catch {
            await engine.shutdown(gracePeriod: .milliseconds(100))
            throw error
        }
        await engine.shutdown(gracePeriod: .milliseconds(100))
    }

    static func connect(_ port: Int?) async throws -> RawClient {
        try await RawClient.connect(port: port!, group: group)
    }

    /// Resident memory of this process in bytes.
    static func residentBytes() -> Int {
        guard let statm = try? String(decoding: readFile("/proc/self/statm"), as: UTF8.self) else { return 0 }
        let fields = statm.split(separator: " ")
        return (Int(fields.count > 1 ? fields[1] : "0") ?? 0) * 4096
    }

    private static func readFile(_ path: String) throws -> [UInt8] {
        var result: [UInt8] = []
        guard let file = fopen(path, "r") else { return [] }
        defer { fclose(file) }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            result += chunk[0..<count]
        }
        return result
    }
}

#if canImport(Glibc)
import Glibc
#endif

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
