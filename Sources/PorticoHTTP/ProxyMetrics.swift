import Metrics
import NIOHTTP1

/// Metrics names (Prometheus style once exported by swift-prometheus).
enum MetricNames {
    /// Counter; dimensions `ingress` and `service` (`namespace/name`, both "" when no route
    /// matched) and `status` (`2xx`...).
    static let requests = "portico_http_requests_total"
    /// Counter; dimensions `service` and `reason` (`connect`, `timeout`, `closed`).
    static let upstreamErrors = "portico_http_upstream_errors_total"
    /// Meter: open downstream connections.
    static let openConnections = "portico_http_open_connections"
    /// Timer (a histogram in seconds); dimension `service`: from a request's head read to its
    /// response head received from the upstream (proxied responses only).
    static let responseLatency = "portico_http_response_latency_seconds"
    /// Counter; dimension `result` (`succeeded`, `failed`): TLS handshakes with clients.
    static let tlsHandshakes = "portico_http_tls_handshakes_total"
}

/// TLS handshakes with clients, made by the engine or the fast lane (thread-safe counters).
struct HandshakeCounters: Sendable {
    let succeeded: Counter
    let failed: Counter

    init(factory: any MetricsFactory) {
        self.succeeded = Counter(
            label: MetricNames.tlsHandshakes,
            dimensions: [("result", "succeeded")],
            factory: factory
        )
        self.failed = Counter(label: MetricNames.tlsHandshakes, dimensions: [("result", "failed")], factory: factory)
    }

    func count(succeeded: Bool) {
        (succeeded ? self.succeeded : self.failed).increment()
    }
}

/// Counters of one event loop, created once per label set and then only incremented: no
/// lock and no factory call on the request path.
final class LoopMetrics {
    private struct Key: Hashable {
        let service: String
        let detail: String
    }

    private struct RouteLabels: Hashable {
        let ingress: String
        let service: String
    }

    private let factory: any MetricsFactory
    /// By Ingress and service, one counter per status class (created when first counted).
    private var requests: [RouteLabels: [Counter?]] = [:]
    /// The last route counted and its counters: requests of a route come in runs, so an
    /// identity check finds them without hashing.
    private var lastRoute: HTTPRoute?
    private var lastCounters: [Counter?] = []
    private var upstreamErrors: [Key: Counter] = [:]
    /// By service, the response latency histogram (created when first recorded), and the
    /// last one recorded to (as `lastService`).
    private var latencies: [String: Timer] = [:]
    private var lastLatencyService: String?
    private var lastLatency: Timer?

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    private static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    /// Counts a response to a request for `route` (`nil`: none matched, or none was read).
    func countRequest(_ route: HTTPRoute?, status: HTTPResponseStatus) {
        let index = min(max(Int(status.code) / 100, 1), 5) - 1
        if route === self.lastRoute, !self.lastCounters.isEmpty, let counter = self.lastCounters[index] {
            counter.increment()
            return
        }
        let labels = RouteLabels(ingress: route?.ingress ?? "", service: route?.service ?? "")
        var counters = self.requests[labels] ?? [Counter?](repeating: nil, count: Self.statusClasses.count)
        let counter: Counter
        if let existing = counters[index] {
            counter = existing
        } else {
            counter = Counter(
                label: MetricNames.requests,
                dimensions: [
                    ("ingress", labels.ingress), ("service", labels.service), ("status", Self.statusClasses[index]),
                ],
                factory: self.factory
            )
            counters[index] = counter
            self.requests[labels] = counters
        }
        self.lastRoute = route
        self.lastCounters = counters
        counter.increment()
    }

    /// Records a proxied response's latency: `nanoseconds` from the request head to the
    /// upstream's response head.
    func recordLatency(service: String, nanoseconds: UInt64) {
        let timer: Timer
        if service == self.lastLatencyService, let last = self.lastLatency {
            timer = last
        } else if let existing = self.latencies[service] {
            timer = existing
        } else {
            timer = Timer(
                label: MetricNames.responseLatency,
                dimensions: [("service", service)],
                preferredDisplayUnit: .seconds,
                factory: self.factory
            )
            self.latencies[service] = timer
        }
        self.lastLatencyService = service
        self.lastLatency = timer
        timer.recordNanoseconds(Int64(clamping: nanoseconds))
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

/// The bodies of the proxy's own answers to failures, shared by the engine (ProxyHandler) and
/// the fast lane, so a client reads the same text whichever served it.
enum LocalAnswer {
    static let headerTimeout = "request header read timeout\n"

    static func connectFailed(service: String, endpoint: UpstreamEndpoint, detail: String = "") -> String {
        "upstream connect failed for service \"\(service)\" (\(endpoint)\(detail))\n"
    }

    /// `reason`: empty, or " (why)".
    static func upstreamClosed(service: String, reason: String = "") -> String {
        "upstream closed the connection for service \"\(service)\"\(reason)\n"
    }

    static func invalidResponse(service: String, failure: any Error) -> String {
        "upstream sent an invalid response for service \"\(service)\" (\(failure))\n"
    }

    /// `which`: `proxy-read-timeout` or `proxy-send-timeout`.
    static func timedOut(service: String, which: String) -> String {
        "upstream timed out for service \"\(service)\" (\(which))\n"
    }
}
