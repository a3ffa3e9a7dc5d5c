import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import PorticoHTTP

extension PorticoHTTPEngineTests {
    /// A closed downstream connection must not stay in memory: nothing may keep its
    /// ``ProxyHandler`` (and through the handler its context and pipeline) alive. Before
    /// the fix, every connection kept ~1.1 KB for good (the handler held its context, the
    /// context holds the handler).
    @Suite("Connection lifetime")
    struct ConnectionLifetimeTests {
        private final class WeakHandler: @unchecked Sendable {
            weak var handler: ProxyHandler?
            init(_ handler: ProxyHandler) { self.handler = handler }
        }

        private final class Tracker: Sendable {
            let handlers = NIOLockedValueBox<[WeakHandler]>([])
            let closed = NIOLockedValueBox(0)

            var alive: Int { self.handlers.withLockedValue { $0.filter { $0.handler != nil }.count } }
        }

        /// A listener with the engine's HTTP/1.1 pipeline and no routes (every request gets a
        /// local 404), recording a weak reference to each connection's ``ProxyHandler``.
        private static func listen(_ tracker: Tracker) async throws -> any Channel {
            var logger = Logger(label: "portico.http.test")
            logger.logLevel = .critical
            let core = EngineCore(
                logger: logger,
                state: try EngineState(HTTPEngineConfiguration()),
                metricsFactory: NOOPMetricsHandler.instance,
                group: TestSupport.group
            )
            return try await ServerBootstrap(group: TestSupport.group.next())
                .childChannelInitializer { channel in
                    channel.closeFuture.whenComplete { _ in tracker.closed.withLockedValue { $0 += 1 } }
                    return channel.eventLoop.makeCompletedFuture {
                        let operations = channel.pipeline.syncOperations
                        let handler = ProxyHandler(core: core, isTLS: false)
                        tracker.handlers.withLockedValue { $0.append(WeakHandler(handler)) }
                        try operations.addHandler(handler)
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        /// `Connection: close` (the proxy half-closes, then closes) or a keep-alive exchange
        /// after which the client goes away.
        @Test(arguments: [true, false])
        func closedConnectionsReleaseTheirHandlers(proxyCloses: Bool) async throws {
            let tracker = Tracker()
            let listener = try await Self.listen(tracker)
            let port = listener.localAddress!.port!
            let connections = 1_000
            let concurrency = 20
            let request =
                "GET / HTTP/1.1\r\nHost: nowhere.example.test\r\n"
                + (proxyCloses ? "Connection: close\r\n" : "") + "\r\n"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        for _ in stride(from: worker, to: connections, by: concurrency) {
                            let client = try await RawClient.connect(port: port, group: TestSupport.group)
                            try await client.send(request)
                            let response = try await client.readResponse()
                            #expect(response.status == 404)
                            if proxyCloses { _ = try await client.waitForClose() }
                            await client.close()
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await listener.close()
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline,
                tracker.closed.withLockedValue({ $0 }) < connections || tracker.alive > 0
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(tracker.closed.withLockedValue { $0 } == connections)
            let alive = tracker.alive
            #expect(alive == 0, "\(alive) of \(connections) closed connections still hold their ProxyHandler")
        }
    }
}
