import Logging
import Metrics
import NIOConcurrencyHelpers
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

    /// `PORTICO_TEST_FAST_LANE=1`: the engines of these tests serve plain HTTP through the
    /// fast lane (HTTPFastLane.swift), so the whole suite checks it too.
    static let fastLane = ProcessInfoLite.environment("PORTICO_TEST_FAST_LANE") == "1"

    /// Starts an engine with `configuration` (listeners default to one plain one on an ephemeral port).
    static func withEngine(
        _ configuration: HTTPEngineConfiguration,
        metrics: (any MetricsFactory)? = nil,
        fastLane: Bool = Self.fastLane,
        _ body: (HTTPEngine, [HTTPListener.Kind: Int]) async throws -> Void
    ) async throws {
        var configuration = configuration
        if configuration.listeners.isEmpty {
            configuration.listeners = [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)]
        }
        let engine = HTTPEngine(group: group, logger: logger, metricsFactory: metrics, fastLane: fastLane)
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

    /// Runs `body`, failing with a ``TimeoutError`` that says what was awaited (`what` is
    /// evaluated at the deadline, so it can report progress) when `body` takes longer than
    /// `seconds`. On a timeout `body` is cancelled and `closing` is closed (the connection
    /// `body` waits on), but this call returns at once and never waits for `body`: a hang
    /// becomes a failure within seconds rather than at the suite's time limit.
    static func withTimeout<Value: Sendable>(
        seconds: Double,
        _ what: @autoclosure @escaping @Sendable () -> String,
        closing channel: (any Channel)? = nil,
        _ body: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let waiter = NIOLockedValueBox<CheckedContinuation<Value, any Error>?>(nil)
        let worker = NIOLockedValueBox<Task<Void, Never>?>(nil)
        @Sendable func takeWaiter() -> CheckedContinuation<Value, any Error>? {
            waiter.withLockedValue { waiter in
                defer { waiter = nil }
                return waiter
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            waiter.withLockedValue { $0 = continuation }
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                guard !Task.isCancelled, let waiter = takeWaiter() else { return }
                worker.withLockedValue { $0 }?.cancel()
                channel?.close(promise: nil)
                waiter.resume(throwing: TimeoutError(description: "timed out after \(seconds) s: \(what())"))
            }
            let task = Task {
                let result: Result<Value, any Error>
                do {
                    result = .success(try await body())
                } catch {
                    result = .failure(error)
                }
                timer.cancel()
                takeWaiter()?.resume(with: result)
            }
            worker.withLockedValue { $0 = task }
        }
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

/// A bounded wait in a test expired.
struct TimeoutError: Error, CustomStringConvertible {
    var description: String
}

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
