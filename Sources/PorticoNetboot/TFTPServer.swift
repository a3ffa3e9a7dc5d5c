public import Logging
public import Metrics
public import NIOCore
import NIOPosix

/// A read-only TFTP server (RFC 1350 with RFC 2347-2349 options and RFC 7440 windows) for
/// network boot. Requests arrive on one socket (port 69); each accepted transfer is served from
/// its own socket on a fresh port, driving one `TFTPTransfer`. Files come from the root
/// directory (`TFTPPathResolver`: no `..`, no symbolic link leaving the root) or from a
/// `TFTPVirtualFileProvider`. Everything runs on one event loop; files are read there with
/// `preadv`, a chunk of blocks at a time (`TFTPDataPackets`), which suits boot files in the
/// page cache.
public final class TFTPServer: Sendable {
    /// Where the server listens and what it serves.
    public struct Configuration: Sendable {
        /// The IP address to listen on; `0.0.0.0` for every interface (transfers then answer
        /// from the address each request was sent to).
        public var host: String
        /// The request port: 69, or 0 for any free port (tests).
        public var port: Int
        /// The directory files are served from (absolute).
        public var root: String
        /// Option limits, timeouts and the cap on concurrent transfers.
        public var limits: TFTPConfiguration
        /// Generated files, consulted before the root.
        public var virtualFiles: (any TFTPVirtualFileProvider)?

        /// A configuration serving `root` on `host:port`.
        public init(
            host: String = "0.0.0.0",
            port: Int = 69,
            root: String,
            limits: TFTPConfiguration = TFTPConfiguration(),
            virtualFiles: (any TFTPVirtualFileProvider)? = nil
        ) {
            self.host = host
            self.port = port
            self.root = root
            self.limits = limits
            self.virtualFiles = virtualFiles
        }
    }

    /// The configuration.
    public let configuration: Configuration
    private let eventLoop: any EventLoop
    private let core: NIOLoopBoundBox<TFTPServerCore>

    /// A server that runs on one event loop of `eventLoopGroup` once started.
    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        let eventLoop = eventLoopGroup.next()
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.core = .makeBoxSendingValue(
            TFTPServerCore(
                configuration: configuration,
                eventLoop: eventLoop,
                logger: logger,
                metrics: TFTPServerMetrics(factory: metricsFactory)
            ),
            eventLoop: eventLoop
        )
    }

    /// Binds the request socket and starts serving. Returns the bound address (with the port
    /// chosen when the configuration asks for port 0).
    public func start() async throws -> SocketAddress {
        let core = self.core
        return try await self.eventLoop.flatSubmit { core.value.start() }.get()
    }

    /// Stops gracefully: closes the request socket at once, lets transfers in progress finish
    /// for up to `gracePeriod`, then ends the rest. Returns when every socket is closed.
    public func stop(gracePeriod: Duration = .seconds(10)) async {
        let core = self.core
        try? await self.eventLoop.flatSubmit { core.value.stop(gracePeriod: gracePeriod) }.get()
    }

    /// Transfers in progress.
    public func activeTransferCount() async -> Int {
        let core = self.core
        return (try? await self.eventLoop.submit { core.value.activeTransferCount }.get()) ?? 0
    }
}

/// Why the TFTP server cannot start.
public enum TFTPServerError: Error, Hashable, Sendable {
    /// `start()` was called twice, or after `stop()`.
    case alreadyStarted
}
