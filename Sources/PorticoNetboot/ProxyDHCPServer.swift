public import Logging
public import Metrics
public import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The proxyDHCP service: UDP sockets on 67 (DISCOVERs, answered with OFFERs) and 4011 (PXE
/// boot server requests, answered with ACKs), with `SO_BROADCAST` and `SO_REUSEADDR`, answering
/// through a `ProxyDHCPResponder` and sending each reply where the responder says. Malformed
/// datagrams are counted and dropped. Both sockets share one event loop.
///
/// Linux delivers broadcasts (255.255.255.255) only to sockets bound to the wildcard address,
/// so port 67 needs host `0.0.0.0` in production.
public final class ProxyDHCPServer: Sendable {
    /// Where the server listens and how it answers.
    public struct Configuration: Sendable {
        /// The IP address both sockets bind to.
        public var host: String
        /// The DHCP server port: 67, or 0 for any free port (tests).
        public var dhcpPort: Int
        /// The PXE boot server port: 4011, or 0 for any free port (tests).
        public var bootServerPort: Int
        /// The port replies the responder addresses to the DHCP client port (68) go to; a
        /// test client that cannot bind 68 sets its own.
        public var clientPort: UInt16
        /// Decides the answers.
        public var responder: ProxyDHCPResponder
        /// The network interface both sockets are bound to (`SO_BINDTODEVICE`), if any: only
        /// its requests are answered, and broadcast replies leave through it even when the
        /// host has no default route (an isolated provisioning network).
        public var interface: String?

        /// A configuration answering with `responder`.
        public init(
            host: String = "0.0.0.0",
            dhcpPort: Int = 67,
            bootServerPort: Int = 4011,
            clientPort: UInt16 = 68,
            responder: ProxyDHCPResponder,
            interface: String? = nil
        ) {
            self.interface = interface
            self.host = host
            self.dhcpPort = dhcpPort
            self.bootServerPort = bootServerPort
            self.clientPort = clientPort
            self.responder = responder
        }
    }

    /// The bound sockets' addresses.
    public struct BoundAddresses: Hashable, Sendable {
        /// The DHCP (67) socket.
        public var dhcp: SocketAddress
        /// The PXE boot server (4011) socket.
        public var bootServer: SocketAddress
    }

    private enum State: Sendable {
        case idle
        case starting
        case running([any Channel])
        case stopped
    }

    /// The configuration.
    public let configuration: Configuration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let metrics: ProxyDHCPServerMetrics
    private let state: NIOLoopBoundBox<State>

    /// A server on one event loop of `eventLoopGroup`, not yet listening.
    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoopGroup.next()
        self.logger = logger
        self.metrics = ProxyDHCPServerMetrics(factory: metricsFactory)
        self.state = .makeBoxSendingValue(.idle, eventLoop: self.eventLoop)
    }

    /// Binds both sockets and starts answering; returns their addresses.
    public func start() async throws -> BoundAddresses {
        let state = self.state
        try await self.eventLoop.submit {
            guard case .idle = state.value else { throw ProxyDHCPServerError.alreadyStarted }
            state.value = .starting
        }.get()
        var channels: [any Channel] = []
        do {
            channels.append(try await self.bind(port: self.configuration.dhcpPort, serving: .dhcp))
            channels.append(try await self.bind(port: self.configuration.bootServerPort, serving: .pxeBootServer))
            let bound = channels
            try await self.eventLoop.submit {
                guard case .starting = state.value else { throw ProxyDHCPServerError.alreadyStarted }
                state.value = .running(bound)
            }.get()
        } catch {
            for channel in channels {
                try? await channel.close()
            }
            try? await self.eventLoop.submit {
                if case .starting = state.value { state.value = .idle }
            }.get()
            throw error
        }
        let addresses = BoundAddresses(dhcp: channels[0].localAddress!, bootServer: channels[1].localAddress!)
        self.logger.info(
            "proxydhcp server listening",
            metadata: [
                "dhcp.address": "\(TFTPServerCore.text(addresses.dhcp))",
                "dhcp.boot_server_address": "\(TFTPServerCore.text(addresses.bootServer))",
            ]
        )
        return addresses
    }

    /// Closes both sockets.
    public func stop() async {
        let state = self.state
        let channels =
            (try? await self.eventLoop.submit { () -> [any Channel] in
                defer { state.value = .stopped }
                if case .running(let channels) = state.value { return channels }
                return []
            }.get()) ?? []
        for channel in channels {
            try? await channel.close()
        }
        self.logger.info("proxydhcp server stopped")
    }

    private func bind(port: Int, serving kind: ProxyDHCPPort) async throws -> any Channel {
        let address = try SocketAddress(ipAddress: self.configuration.host, port: port)
        let (responder, clientPort) = (self.configuration.responder, self.configuration.clientPort)
        let interface = self.configuration.interface
        let (logger, metrics) = (self.logger, self.metrics)
        return try await DatagramBootstrap(group: self.eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = ProxyDHCPRequestHandler(
                        port: kind,
                        responder: responder,
                        clientPort: clientPort,
                        logger: logger,
                        metrics: metrics
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }.flatMap {
                    guard let interface, let provider = channel as? any SocketOptionProvider else {
                        return channel.eventLoop.makeSucceededVoidFuture()
                    }
                    return provider.bindToDevice(interface)
                }
            }
            .bind(to: address)
            .get()
    }
}

/// Why the proxyDHCP server cannot start.
public enum ProxyDHCPServerError: Error, Hashable, Sendable {
    /// `start()` was called twice, or after `stop()`.
    case alreadyStarted
    /// Binding to an interface by name is supported on Linux only.
    case interfaceBindingUnsupported
}

extension SocketOptionProvider {
    /// `SO_BINDTODEVICE`: the socket receives and sends through `interface` only.
    func bindToDevice(_ interface: String) -> EventLoopFuture<Void> {
        #if os(Linux)
        var name = InterfaceName()
        let bytes = Array(interface.utf8.prefix(15))
        withUnsafeMutableBytes(of: &name) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        return self.unsafeSetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET),
            name: SocketOptionName(SO_BINDTODEVICE),
            value: name
        )
        #else
        return self.eventLoop.makeFailedFuture(ProxyDHCPServerError.interfaceBindingUnsupported)
        #endif
    }
}

/// `IFNAMSIZ` bytes, NUL-terminated, as `SO_BINDTODEVICE` takes them.
private struct InterfaceName: Sendable {
    var bytes: (UInt64, UInt64) = (0, 0)
}
