import Metrics

/// The proxyDHCP server's counters (Prometheus names), created once per server.
struct ProxyDHCPServerMetrics: Sendable {
    /// Datagrams received, per port.
    let received: [ProxyDHCPPort: Counter]
    /// Replies sent, per port.
    let replies: [ProxyDHCPPort: Counter]
    /// Datagrams that are not well-formed DHCP messages: dropped.
    let malformed: Counter
    /// Well-formed messages that get no answer (not PXE, not a DISCOVER on 67, ...).
    let ignored: Counter
    /// Replies that could not be encoded or sent.
    let sendFailures: Counter

    init(factory: any MetricsFactory) {
        var received: [ProxyDHCPPort: Counter] = [:]
        var replies: [ProxyDHCPPort: Counter] = [:]
        for port in [ProxyDHCPPort.dhcp, .pxeBootServer] {
            let dimensions = [("port", "\(port.rawValue)")]
            received[port] = Counter(
                label: "portico_proxydhcp_received_total",
                dimensions: dimensions,
                factory: factory
            )
            replies[port] = Counter(label: "portico_proxydhcp_replies_total", dimensions: dimensions, factory: factory)
        }
        self.received = received
        self.replies = replies
        self.malformed = Counter(label: "portico_proxydhcp_malformed_total", factory: factory)
        self.ignored = Counter(label: "portico_proxydhcp_ignored_total", factory: factory)
        self.sendFailures = Counter(label: "portico_proxydhcp_send_failures_total", factory: factory)
    }
}
