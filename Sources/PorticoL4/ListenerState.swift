import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// What every listener and connection shares with the engine.
final class L4Core: Sendable {
    let logger: Logger
    let metricsFactory: any MetricsFactory
    /// Open downstream TCP connections, for the graceful shutdown.
    let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    init(logger: Logger, metricsFactory: any MetricsFactory) {
        self.logger = logger
        self.metricsFactory = metricsFactory
    }
}

/// An endpoint ready to connect to: an IP literal parsed once, or a name resolved per connect.
enum ResolvedEndpoint: Sendable, Hashable, CustomStringConvertible {
    case address(SocketAddress)
    case name(String, port: Int)

    init(_ endpoint: L4Endpoint) {
        if let address = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) {
            self = .address(address)
        } else {
            self = .name(endpoint.host, port: endpoint.port)
        }
    }

    var description: String {
        switch self {
        case .address(let address): return "\(address)"
        case .name(let host, let port): return L4Endpoint(host: host, port: port).description
        }
    }
}

/// Settings of one TCP listener generation; connections take a reference at accept time.
final class TCPListenerSettings: Sendable {
    let forward: TCPForward
    let endpoints: [ResolvedEndpoint]
    let trustedSources: [AddressBlock]
    let metrics: TCPMetrics

    init(forward: TCPForward, trustedSources: [AddressBlock], metrics: TCPMetrics) {
        self.forward = forward
        self.endpoints = forward.endpoints.map(ResolvedEndpoint.init)
        self.trustedSources = trustedSources
        self.metrics = metrics
    }

    func isTrusted(_ peer: SocketAddress?) -> Bool {
        guard let peer, !self.trustedSources.isEmpty else { return false }
        return self.trustedSources.contains { $0.contains(peer) }
    }
}

/// Settings of one UDP listener generation; flows take a reference when they start.
final class UDPListenerSettings: Sendable {
    let forward: UDPForward
    let endpoints: [ResolvedEndpoint]
    let metrics: UDPMetrics

    init(forward: UDPForward, metrics: UDPMetrics) {
        self.forward = forward
        self.endpoints = forward.endpoints.map(ResolvedEndpoint.init)
        self.metrics = metrics
    }
}

/// The current settings of a bound listener and its round-robin position, replaced on
/// reload while the socket stays bound. One lock per new connection or flow.
final class ListenerState<Settings: AnyObject & Sendable>: Sendable {
    private struct Value {
        var settings: Settings
        var rotation = EndpointRotation()
    }

    private let box: NIOLockedValueBox<Value>

    init(_ settings: Settings) {
        self.box = NIOLockedValueBox(Value(settings: settings))
    }

    var settings: Settings {
        self.box.withLockedValue { $0.settings }
    }

    func replace(_ settings: Settings) {
        self.box.withLockedValue { $0.settings = settings }
    }

    /// The settings for a new connection and its first endpoint index (`nil`: no endpoints).
    func nextConnection(endpointCount: (Settings) -> Int) -> (Settings, Int?) {
        self.box.withLockedValue { value in
            (value.settings, value.rotation.start(count: endpointCount(value.settings)))
        }
    }
}
