import MetricsTestKit
import NIOHTTP1
import Testing

@testable import PorticoHTTP

/// The per-loop request counters (a cache of the last service in front of a table).
@Suite("Loop metrics")
struct LoopMetricsTests {
    @Test func requestsAreCountedByServiceAndStatusClassWhateverTheOrder() {
        let factory = TestMetrics()
        let metrics = LoopMetrics(factory: factory)
        let counted: [(String, HTTPResponseStatus)] = [
            ("a", .ok), ("a", .ok), ("a", .notFound), ("b", .ok), ("a", .badGateway), ("a", .ok),
            ("b", .continue), ("", .notFound), ("a", .notFound), ("b", .movedPermanently),
        ]
        for (service, status) in counted { metrics.countRequest(service: service, status: status) }
        let expected: [(String, String, Int64)] = [
            ("a", "2xx", 3), ("a", "4xx", 2), ("a", "5xx", 1), ("b", "2xx", 1), ("b", "1xx", 1), ("b", "3xx", 1),
            ("", "4xx", 1),
        ]
        for (service, status, total) in expected {
            let dimensions = [("service", service), ("status", status)]
            #expect(
                factory.counterTotal(label: MetricNames.requests, dimensions: dimensions) == total,
                "\(service) \(status)"
            )
        }
    }
}
