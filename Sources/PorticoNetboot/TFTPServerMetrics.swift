import Metrics

/// The TFTP server's counters (Prometheus names), created once per server.
struct TFTPServerMetrics: Sendable {
    /// Requests served from a fresh port.
    let requestsServed: Counter
    /// Requests answered with an ERROR: write requests, unsafe or missing files, busy server.
    let requestsRefused: Counter
    /// Datagrams on port 69 that are not requests, and undecodable packets on transfer ports.
    let datagramsDropped: Counter
    /// Packets from a port other than the transfer's client, answered with ERROR 5.
    let unknownTransferIDPackets: Counter
    /// Transfers ended, by outcome.
    private let transfersEnded: [TFTPTransferResult.Kind: Counter]
    /// File bytes sent, retransmissions included.
    let bytesSent: Counter
    /// DATA blocks and OACKs sent again after a timeout.
    let retransmissions: Counter
    /// Transfers in progress.
    let activeTransfers: Gauge
    /// How long transfers took.
    let transferDuration: Timer

    init(factory: any MetricsFactory) {
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        self.requestsServed = counter("portico_tftp_requests_total", [("result", "served")])
        self.requestsRefused = counter("portico_tftp_requests_total", [("result", "refused")])
        self.datagramsDropped = counter("portico_tftp_datagrams_dropped_total")
        self.unknownTransferIDPackets = counter("portico_tftp_unknown_transfer_id_packets_total")
        var ended: [TFTPTransferResult.Kind: Counter] = [:]
        for kind in TFTPTransferResult.Kind.allCases {
            ended[kind] = counter("portico_tftp_transfers_total", [("outcome", kind.rawValue)])
        }
        self.transfersEnded = ended
        self.bytesSent = counter("portico_tftp_bytes_sent_total")
        self.retransmissions = counter("portico_tftp_retransmissions_total")
        self.activeTransfers = Gauge(label: "portico_tftp_active_transfers", factory: factory)
        self.transferDuration = Timer(
            label: "portico_tftp_transfer_duration_seconds",
            preferredDisplayUnit: .seconds,
            factory: factory
        )
    }

    /// Counts a transfer that ended with `result`.
    func transferEnded(_ result: TFTPTransferResult) {
        self.transfersEnded[result.kind]?.increment()
    }
}
