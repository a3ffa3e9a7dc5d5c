import Foundation
public import Logging
public import Metrics
public import NIOCore

/// Runs network boot for a configuration: proxyDHCP (67 and 4011), TFTP (69) and the HTTP
/// boot listener, all serving one ``NetbootContent``. Applying a configuration whose listening
/// part is unchanged only swaps the content (sockets stay open); otherwise the servers are
/// restarted on the new addresses.
public actor NetbootService {
    /// Where the servers listen, once started.
    public struct BoundAddresses: Sendable {
        /// proxyDHCP's sockets.
        public var dhcp: ProxyDHCPServer.BoundAddresses
        /// The TFTP request socket.
        public var tftp: SocketAddress
        /// The HTTP boot listener.
        public var http: SocketAddress?
    }

    private struct Running {
        var listening: NetbootConfiguration
        var dhcp: ProxyDHCPServer
        var tftp: TFTPServer
        var http: NetbootHTTPServer
        var addresses: BoundAddresses
    }

    private let group: any EventLoopGroup
    private let logger: Logger
    private let metricsFactory: any MetricsFactory
    private let ledger: InstallLedger
    private var running: Running?
    private var content: NetbootContent?

    /// A service recording installs in `ledger`; nothing runs until ``apply(_:)``.
    public init(
        ledger: InstallLedger,
        group: any EventLoopGroup,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.ledger = ledger
        self.group = group
        self.logger = logger
        self.metricsFactory = metricsFactory
    }

    /// The bound addresses, when running.
    public var addresses: BoundAddresses? { self.running?.addresses }

    /// Serves `configuration`, or stops everything for `nil`. On a failure to bind, nothing of
    /// the new configuration runs and the error is thrown.
    public func apply(_ configuration: NetbootConfiguration?) async throws {
        guard let configuration else {
            await self.stop()
            return
        }
        let snapshot = self.snapshot(for: configuration)
        if let running = self.running, running.listening == configuration.listeningPart, let content = self.content {
            content.replace(with: snapshot)
            self.logInventory(configuration)
            return
        }
        await self.stop()
        let content = NetbootContent(snapshot, ledger: self.ledger)
        let responder = ProxyDHCPResponder(
            serverAddress: configuration.serverAddress,
            httpBase: URL(string: configuration.httpBase) ?? URL(string: "http://0.0.0.0")!,
            bootFiles: .ipxeDefaults,
            treatsFirmwareIPXEAsPlainPXE: configuration.treatsFirmwareIPXEAsPlainPXE
        )
        let dhcp = ProxyDHCPServer(
            configuration: .init(
                host: configuration.dhcp.host,
                dhcpPort: configuration.dhcp.port,
                bootServerPort: configuration.bootServer.port,
                clientPort: configuration.dhcpClientPort,
                responder: responder,
                interface: configuration.interface
            ),
            eventLoopGroup: self.group,
            logger: self.logger,
            metricsFactory: self.metricsFactory
        )
        let tftp = TFTPServer(
            configuration: .init(
                host: configuration.tftp.host,
                port: configuration.tftp.port,
                root: configuration.assetsDirectory ?? "/nonexistent-portico-assets",
                limits: configuration.tftpLimits,
                virtualFiles: NetbootTFTPFiles(content: content, logger: self.logger)
            ),
            eventLoopGroup: self.group,
            logger: self.logger,
            metricsFactory: self.metricsFactory
        )
        var started: [String] = []
        var current = (
            "proxyDHCP", "\(configuration.dhcp.host):\(configuration.dhcp.port) and \(configuration.bootServer.port)"
        )
        do {
            let dhcpAddresses = try await dhcp.start()
            started.append("dhcp")
            current = ("TFTP", "\(configuration.tftp.host):\(configuration.tftp.port)")
            let tftpAddress = try await tftp.start()
            started.append("tftp")
            current = ("HTTP boot", "\(configuration.http.host):\(configuration.http.port)")
            let http = try await NetbootHTTPServer.start(
                host: configuration.http.host,
                port: configuration.http.port,
                responder: NetbootHTTPResponder(content: content),
                group: self.group,
                logger: self.logger,
                metricsFactory: self.metricsFactory
            )
            self.running = Running(
                listening: configuration.listeningPart,
                dhcp: dhcp,
                tftp: tftp,
                http: http,
                addresses: BoundAddresses(dhcp: dhcpAddresses, tftp: tftpAddress, http: http.localAddress)
            )
            self.content = content
        } catch {
            if started.contains("dhcp") { await dhcp.stop() }
            if started.contains("tftp") { await tftp.stop(gracePeriod: .zero) }
            throw NetbootServiceError.cannotListen(server: current.0, address: current.1, reason: "\(error)")
        }
        self.logInventory(configuration)
    }

    /// Stops every server (TFTP transfers get `gracePeriod` to finish).
    public func stop(gracePeriod: Duration = .seconds(5)) async {
        guard let running = self.running else { return }
        self.running = nil
        self.content = nil
        await running.dhcp.stop()
        await running.tftp.stop(gracePeriod: gracePeriod)
        await running.http.close()
    }

    private func snapshot(for configuration: NetbootConfiguration) -> NetbootContent.Snapshot {
        let (files, missing) = BootLoaderDirectories.load(configuration.bootLoaderDirectories)
        if !missing.isEmpty {
            self.logger.warning(
                "netboot boot loader directories missing",
                metadata: ["netboot.directories": "\(missing)"]
            )
        }
        return NetbootContent.Snapshot(
            renderer: BootFileRenderer(
                inventory: configuration.inventory,
                httpBase: configuration.httpBase,
                serverAddress: configuration.serverAddress.description
            ),
            bootLoaders: files,
            assetsDirectory: configuration.assetsDirectory
        )
    }

    private func logInventory(_ configuration: NetbootConfiguration) {
        self.logger.info(
            "netboot serving",
            metadata: [
                "netboot.server": "\(configuration.serverAddress)",
                "netboot.profiles": "\(configuration.inventory.profiles.count)",
                "netboot.groups": "\(configuration.inventory.groups.count)",
                "netboot.machines": "\(configuration.inventory.machines.count)",
            ]
        )
    }
}

/// Why network boot does not run.
public enum NetbootServiceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A server cannot bind its socket.
    case cannotListen(server: String, address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotListen(let server, let address, let reason):
            "netboot: the \(server) server cannot listen on \(address): \(reason); ports below 1024 (67, 69, 4011 is not) need root or CAP_NET_BIND_SERVICE, and another DHCP/TFTP server may hold the port (NetbootSettings spec.dhcp, spec.tftp, spec.http)"
        }
    }
}
