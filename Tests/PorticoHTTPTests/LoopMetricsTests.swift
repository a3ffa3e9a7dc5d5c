import MetricsTestKit
import NIOHTTP1
import Testing

@testable import PorticoHTTP

/// The per-loop request counters (a cache of the last route in front of a table).
@Suite("Loop metrics")
struct LoopMetricsTests {
    @Test func requestsAreCountedByIngressServiceAndStatusClassWhateverTheOrder() {
        let factory = TestMetrics()
        let metrics = LoopMetrics(factory: factory)
        let a = HTTPRoute(service: "default/a", ingress: "default/web", pool: "a")
        let b = HTTPRoute(service: "default/b", ingress: "default/web", pool: "b")
        // Another Ingress for the same service, and a second route object with a's labels
        // (as after a reload): counted apart from, and together with, a's.
        let other = HTTPRoute(service: "default/a", ingress: "tools/admin", pool: "a")
        let reloaded = HTTPRoute(service: "default/a", ingress: "default/web", pool: "a")
        let counted: [(HTTPRoute?, HTTPResponseStatus)] = [
            (a, .ok), (a, .ok), (a, .notFound), (b, .ok), (a, .badGateway), (reloaded, .ok),
            (b, .continue), (nil, .notFound), (a, .notFound), (b, .movedPermanently), (other, .ok),
        ]
        for (route, status) in counted { metrics.countRequest(route, status: status) }
        let expected: [(String, String, String, Int64)] = [
            ("default/web", "default/a", "2xx", 3), ("default/web", "default/a", "4xx", 2),
            ("default/web", "default/a", "5xx", 1), ("default/web", "default/b", "2xx", 1),
            ("default/web", "default/b", "1xx", 1), ("default/web", "default/b", "3xx", 1),
            ("", "", "4xx", 1), ("tools/admin", "default/a", "2xx", 1),
        ]
        for (ingress, service, status, total) in expected {
            let dimensions = [("ingress", ingress), ("service", service), ("status", status)]
            #expect(
                factory.counterTotal(label: MetricNames.requests, dimensions: dimensions) == total,
                "\(ingress) \(service) \(status)"
            )
        }
        #expect(factory.counterTotal(label: MetricNames.requests) == Int64(counted.count))
    }
}
