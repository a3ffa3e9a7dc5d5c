// The TCP/UDP forwarder.
//
// TCP hot path (both channels of a connection on the accepting event loop): read on one side
// -> TCPClientHandler / TCPEndpointHandler -> partner's context.write (no NIOAny re-boxing
// beyond NIO's own, no copy) -> one flush per read burst. Backpressure: `read` is withheld on
// a side while its partner is not writable, so memory per connection stays within the
// write-buffer high watermark (64 KiB) plus one read burst. No futures or closures per read;
// one scheduled callback per idle period.
//
// UDP hot path (one event loop per listener): listener `recvmmsg` -> flow table lookup (one
// hash) -> copy into the flow's batch; at the end of the tick one `sendmmsg` per flow socket
// and one for all replies on the listener, runs of same-size datagrams as one segmented send
// (UDPListenerHandler, DatagramBatch, DatagramSender). A PROXY v2 header, when asked for, is
// copied in front of each datagram in the batch.

public import Logging
public import Metrics
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix

/// The TCP/UDP forwarding data plane: listeners forwarding to Service endpoints, with PROXY
/// protocol out and in.
///
/// `apply` binds on first use and reloads afterwards; `shutdown` drains. Calls to `apply`
/// and `shutdown` must not overlap (the runtime's reconciler serialises them).
public final class L4Engine: Sendable {
    private enum BoundListener: Sendable {
        case tcp(any Channel, ListenerState<TCPListenerSettings>)
        case udp(any Channel, ListenerState<UDPListenerSettings>)

        var channel: any Channel {
            switch self {
            case .tcp(let channel, _), .udp(let channel, _): return channel
            }
        }
    }

    private enum Prepared {
        case tcp(TCPListenerSettings)
        case udp(UDPListenerSettings)
    }

    private let group: any EventLoopGroup
    private let core: L4Core
    private let listeners = NIOLockedValueBox<[L4ListenerKey: BoundListener]>([:])

    /// Creates an engine that is not listening yet. Metrics go to `metricsFactory`
    /// (the bootstrapped global factory by default).
    public init(
        group: any EventLoopGroup,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.group = group
        self.core = L4Core(logger: logger, metricsFactory: metricsFactory)
    }

    /// The addresses actually bound, by listener (port 0 resolves here).
    public var boundAddresses: [L4ListenerKey: SocketAddress] {
        self.listeners.withLockedValue { listeners in
            var result: [L4ListenerKey: SocketAddress] = [:]
            for (key, listener) in listeners {
                if let address = listener.channel.localAddress { result[key] = address }
            }
            return result
        }
    }

    /// Open client TCP connections (those of removed listeners included, while they drain).
    public var openConnections: Int {
        self.core.connections.withLockedValue { $0.count }
    }

    /// Applies a configuration: the first call binds; later calls are reloads.
    ///
    /// The configuration is validated and new listeners bound before anything changes; on
    /// error the previous configuration keeps serving. Listeners whose address, port and
    /// protocol did not change stay bound and take the new endpoints and settings for new
    /// connections and flows. Removed TCP listeners stop accepting; their connections
    /// continue until they end (or idle out, or ``shutdown(gracePeriod:)``). Removed UDP
    /// listeners close with their flows (replies could not leave from a closed socket).
    public func apply(_ configuration: L4Configuration) async throws {
        let prepared = try self.prepare(configuration)
        let existing = self.listeners.withLockedValue { $0 }

        var bound: [L4ListenerKey: BoundListener] = [:]
        do {
            for (key, settings) in prepared where existing[key] == nil {
                bound[key] = try await self.bind(key, settings)
            }
        } catch {
            for (_, listener) in bound { try? await listener.channel.close() }
            throw error
        }

        var removed: [(L4ListenerKey, any Channel)] = []
        self.listeners.withLockedValue { listeners in
            for (key, listener) in listeners {
                switch (listener, prepared[key]) {
                case (.tcp(_, let state), .tcp(let settings)?): state.replace(settings)
                case (.udp(_, let state), .udp(let settings)?): state.replace(settings)
                default:
                    removed.append((key, listener.channel))
                    listeners[key] = nil
                }
            }
            listeners.merge(bound) { old, _ in old }
        }
        for (_, channel) in removed {
            try? await channel.close()
        }
        self.core.logger.info(
            "l4 configuration applied",
            metadata: [
                "listeners": "\(prepared.count)", "new": "\(bound.count)", "closed": "\(removed.count)",
            ]
        )
    }

    /// Stops accepting, lets open TCP connections finish for up to `gracePeriod`, then closes
    /// whatever is still open. UDP listeners and their flows close at once.
    public func shutdown(gracePeriod: TimeAmount) async {
        let listeners = self.listeners.withLockedValue { listeners in
            defer { listeners = [:] }
            return listeners
        }
        for (_, listener) in listeners {
            try? await listener.channel.close()
        }
        let deadline = NIODeadline.now() + gracePeriod
        while NIODeadline.now() < deadline, self.openConnections > 0 {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        let remaining = self.core.connections.withLockedValue { $0 }
        for (_, channel) in remaining {
            try? await channel.close()
        }
    }

    // MARK: Validation

    private func prepare(_ configuration: L4Configuration) throws -> [L4ListenerKey: Prepared] {
        var prepared: [L4ListenerKey: Prepared] = [:]
        for forward in configuration.tcp {
            let key = forward.key
            try Self.validateListener(key, endpoints: forward.endpoints, prepared: prepared)
            guard forward.connectTimeout.nanoseconds > 0 else {
                throw L4ConfigurationError.invalidLimit(key, "connectTimeout")
            }
            guard forward.idleTimeout.nanoseconds > 0 else {
                throw L4ConfigurationError.invalidLimit(key, "idleTimeout")
            }
            var trusted: [AddressBlock] = []
            for text in forward.acceptProxyProtocolFrom {
                guard let block = AddressBlock(text) else {
                    throw L4ConfigurationError.invalidTrustedSource(key, text)
                }
                trusted.append(block)
            }
            let metrics = TCPMetrics(
                factory: self.core.metricsFactory,
                service: forward.service,
                address: L4Endpoint(host: key.address, port: key.port).description
            )
            prepared[key] = .tcp(TCPListenerSettings(forward: forward, trustedSources: trusted, metrics: metrics))
        }
        for forward in configuration.udp {
            let key = forward.key
            try Self.validateListener(key, endpoints: forward.endpoints, prepared: prepared)
            guard forward.sendProxyProtocol != .v1 else { throw L4ConfigurationError.proxyProtocolV1OverUDP(key) }
            guard forward.flowIdleTimeout.nanoseconds > 0 else {
                throw L4ConfigurationError.invalidLimit(key, "flowIdleTimeout")
            }
            guard forward.maxFlows > 0 else { throw L4ConfigurationError.invalidLimit(key, "maxFlows") }
            let metrics = UDPMetrics(
                factory: self.core.metricsFactory,
                service: forward.service,
                address: L4Endpoint(host: key.address, port: key.port).description
            )
            prepared[key] = .udp(UDPListenerSettings(forward: forward, metrics: metrics))
        }
        return prepared
    }

    private static func validateListener(
        _ key: L4ListenerKey,
        endpoints: [L4Endpoint],
        prepared: [L4ListenerKey: Prepared]
    ) throws {
        guard prepared[key] == nil else { throw L4ConfigurationError.duplicateListener(key) }
        guard (0...65_535).contains(key.port), (try? SocketAddress(ipAddress: key.address, port: key.port)) != nil
        else { throw L4ConfigurationError.invalidListenerAddress(key) }
        for endpoint in endpoints where !(1...65_535).contains(endpoint.port) || endpoint.host.isEmpty {
            throw L4ConfigurationError.invalidEndpoint(key, endpoint)
        }
    }

    // MARK: Binding

    private func bind(_ key: L4ListenerKey, _ prepared: Prepared) async throws -> BoundListener {
        let address = try SocketAddress(ipAddress: key.address, port: key.port)
        let core = self.core
        switch prepared {
        case .tcp(let settings):
            let state = ListenerState(settings)
            let channel = try await ServerBootstrap(group: self.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        Self.enableFreeBind(channel, address: address, key: key, logger: core.logger)
                    }
                }
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let (settings, start) = state.nextConnection { $0.endpoints.count }
                        let handler = TCPClientHandler(settings: settings, startIndex: start, core: core)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .bind(to: address).get()
            return .tcp(channel, state)
        case .udp(let settings):
            if Self.isWildcard(address) {
                core.logger.warning(
                    "udp listener on a wildcard address: on a host with several addresses, replies may leave from another one",
                    metadata: ["listener": "\(key)"]
                )
            }
            let state = ListenerState(settings)
            // Vector reads (recvmmsg): one 64 KiB slot per datagram, so that no datagram is
            // ever truncated; the buffer (1 MiB) is pooled and reused. A large receive buffer
            // holds bursts from many clients while the loop is busy (capped by rmem_max).
            let bootstrap = DatagramBootstrap(group: self.group)
                .channelOption(
                    .recvAllocator,
                    value: FixedSizeRecvByteBufferAllocator(capacity: UDPListenerHandler.readSlots * 65_536)
                )
                .channelOption(.datagramVectorReadMessageCount, value: UDPListenerHandler.readSlots)
                .channelOption(.maxMessagesPerRead, value: 4)
                .channelOption(.socketOption(.so_rcvbuf), value: UDPListenerHandler.receiveBufferSize)
            let channel: any Channel
            if DatagramSender.isSupported {
                // The socket is made here so that replies can be sent on it directly.
                let descriptor = try UDPSocket.bound(to: address, freeBind: true) { error in
                    Self.freeBindFailed(key: key, error: error, logger: core.logger)
                }
                channel =
                    try await bootstrap
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let handler = UDPListenerHandler(state: state, core: core, descriptor: descriptor)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                    }
                    .withBoundSocket(descriptor).get()
            } else {
                channel =
                    try await bootstrap
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            Self.enableFreeBind(channel, address: address, key: key, logger: core.logger)
                            let handler = UDPListenerHandler(state: state, core: core, descriptor: nil)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                    }
                    .bind(to: address).get()
            }
            return .udp(channel, state)
        }
    }

    private static func isWildcard(_ address: SocketAddress) -> Bool {
        ProxyHeader.bytes(of: address).allSatisfy { $0 == 0 }
    }

    /// IP_FREEBIND / IPV6_FREEBIND (Linux): bind a virtual address before this node holds it,
    /// so the listener is ready the moment the address moves here. Not fatal when refused.
    private static func enableFreeBind(
        _ channel: any Channel,
        address: SocketAddress,
        key: L4ListenerKey,
        logger: Logger
    ) {
        #if os(Linux)
        let option: ChannelOptions.Types.SocketOption
        switch address {
        case .v6:
            option = .init(level: .ipv6, name: NIOBSDSocket.Option(rawValue: 78))
        default:
            option = .init(level: .ip, name: NIOBSDSocket.Option(rawValue: 15))
        }
        do {
            try channel.syncOptions?.setOption(option, value: 1)
        } catch {
            Self.freeBindFailed(key: key, error: error, logger: logger)
        }
        #endif
    }

    private static func freeBindFailed(key: L4ListenerKey, error: any Error, logger: Logger) {
        logger.info(
            "could not enable free bind; the listener needs its address to be present",
            metadata: ["listener": "\(key)", "error": "\(error)"]
        )
    }
}
