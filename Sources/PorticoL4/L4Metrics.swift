import Metrics

/// The metrics of one TCP listener, labelled `service` and `address` (`ip:port`).
///
/// Handlers are created once per listener generation and shared by its connections; hot
/// paths add up bytes per read burst and report them once.
final class TCPMetrics: Sendable {
    let connectionsAccepted: any CounterHandler
    let connectionsActive: any MeterHandler
    let bytesFromClients: any CounterHandler
    let bytesToClients: any CounterHandler
    let connectFailures: any CounterHandler
    let proxyHeadersRejected: any CounterHandler

    init(factory: any MetricsFactory, service: String, address: String) {
        let dimensions = [("service", service), ("address", address)]
        self.connectionsAccepted = factory.makeCounter(
            label: "portico_tcp_connections_accepted_total",
            dimensions: dimensions
        )
        self.connectionsActive = factory.makeMeter(label: "portico_tcp_connections_active", dimensions: dimensions)
        self.bytesFromClients = factory.makeCounter(
            label: "portico_tcp_bytes_from_clients_total",
            dimensions: dimensions
        )
        self.bytesToClients = factory.makeCounter(label: "portico_tcp_bytes_to_clients_total", dimensions: dimensions)
        self.connectFailures = factory.makeCounter(
            label: "portico_tcp_connect_failures_total",
            dimensions: dimensions
        )
        self.proxyHeadersRejected = factory.makeCounter(
            label: "portico_tcp_proxy_headers_rejected_total",
            dimensions: dimensions
        )
    }
}

/// The metrics of one UDP listener, labelled `service` and `address` (`ip:port`).
final class UDPMetrics: Sendable {
    let flowsActive: any MeterHandler
    let flowsDropped: any CounterHandler
    let datagramsFromClients: any CounterHandler
    let datagramsToClients: any CounterHandler
    let bytesFromClients: any CounterHandler
    let bytesToClients: any CounterHandler
    let datagramsDropped: any CounterHandler
    let connectFailures: any CounterHandler

    init(factory: any MetricsFactory, service: String, address: String) {
        let dimensions = [("service", service), ("address", address)]
        self.flowsActive = factory.makeMeter(label: "portico_udp_flows_active", dimensions: dimensions)
        self.flowsDropped = factory.makeCounter(label: "portico_udp_flows_dropped_total", dimensions: dimensions)
        self.datagramsFromClients = factory.makeCounter(
            label: "portico_udp_datagrams_from_clients_total",
            dimensions: dimensions
        )
        self.datagramsToClients = factory.makeCounter(
            label: "portico_udp_datagrams_to_clients_total",
            dimensions: dimensions
        )
        self.bytesFromClients = factory.makeCounter(
            label: "portico_udp_bytes_from_clients_total",
            dimensions: dimensions
        )
        self.bytesToClients = factory.makeCounter(label: "portico_udp_bytes_to_clients_total", dimensions: dimensions)
        self.datagramsDropped = factory.makeCounter(
            label: "portico_udp_datagrams_dropped_total",
            dimensions: dimensions
        )
        self.connectFailures = factory.makeCounter(
            label: "portico_udp_connect_failures_total",
            dimensions: dimensions
        )
    }
}
