import Metrics
import NIOHTTP1

/// Metrics names (Prometheus style once exported by swift-prometheus).
enum MetricNames {
    /// Counter; dimensions `service` ("" when no route matched) and `status` (`2xx`...).
    static let requests = "portico_http_requests_total"
    /// Counter; dimensions `service` and `reason` (`connect`, `timeout`, `closed`).
    static let upstreamErrors = "portico_http_upstream_errors_total"
    /// Meter: open downstream connections.
    static let openConnections = "portico_http_open_connections"
}

/// Counters of one event loop, created once per label set and then only incremented: no
/// lock and no factory call on the request path.
final class LoopMetrics {
    private struct Key: Hashable {
        let service: String
        let detail: String
    }

    private let factory: any MetricsFactory
    private var requests: [Key: Counter] = [:]
    private var upstreamErrors: [Key: Counter] = [:]

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    private static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    func countRequest(service: String, status: HTTPResponseStatus) {
        let index = min(max(Int(status.code) / 100, 1), 5) - 1
        let key = Key(service: service, detail: Self.statusClasses[index])
        if let counter = self.requests[key] {
            counter.increment()
            return
        }
        let counter = Counter(
            label: MetricNames.requests,
            dimensions: [("service", service), ("status", key.detail)],
            factory: self.factory
        )
        self.requests[key] = counter
        counter.increment()
    }

    func countUpstreamError(service: String, reason: String) {
        let key = Key(service: service, detail: reason)
        if let counter = self.upstreamErrors[key] {
            counter.increment()
            return
        }
        let counter = Counter(
            label: MetricNames.upstreamErrors,
            dimensions: [("service", service), ("reason", reason)],
            factory: self.factory
        )
        self.upstreamErrors[key] = counter
        counter.increment()
    }
}
