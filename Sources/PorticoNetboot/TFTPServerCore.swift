import Logging
import NIOCore
import NIOPosix

/// The TFTP server's state, confined to its event loop: admission, the transfers in progress
/// (each on its own thread, `TFTPTransferRunner`) and the request socket. `TFTPServer` is its
/// thread-safe front.
final class TFTPServerCore {
    private enum State {
        case idle
        case starting
        case running(any Channel)
        case stopping
        case stopped
    }

    let configuration: TFTPServer.Configuration
    let eventLoop: any EventLoop
    let logger: Logger
    let metrics: TFTPServerMetrics
    private var state = State.idle
    private var admission: TFTPAdmission
    private var transfers: [ObjectIdentifier: TFTPTransferRunner] = [:]
    /// Transfers the client has not answered yet, by client: an identical request from the same
    /// port is a retransmission of the request, not a new one.
    private var unansweredRequests: [SocketAddress: (request: TFTPRequest, transfer: ObjectIdentifier)] = [:]
    private var stopPromises: [EventLoopPromise<Void>] = []
    private var gracePeriodTimer: Scheduled<Void>?
    private var listenerAddress: SocketAddress?

    init(configuration: TFTPServer.Configuration, eventLoop: any EventLoop, logger: Logger, metrics: TFTPServerMetrics)
    {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
        self.admission = TFTPAdmission(configuration: configuration.limits)
    }

    var activeTransferCount: Int { self.transfers.count }

    // MARK: Lifecycle

    func start() -> EventLoopFuture<SocketAddress> {
        guard case .idle = self.state else { return self.eventLoop.makeFailedFuture(TFTPServerError.alreadyStarted) }
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: self.configuration.host, port: self.configuration.port)
        } catch {
            return self.eventLoop.makeFailedFuture(error)
        }
        self.state = .starting
        let core = NIOLoopBound(self, eventLoop: self.eventLoop)
        return DatagramBootstrap(group: self.eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // The address each request was sent to: transfers answer from it.
            .channelOption(.receivePacketInfo, value: true)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TFTPRequestHandler(core: core.value))
                }
            }
            .bind(to: address)
            .assumeIsolated()
            .flatMapErrorThrowing { error in
                if case .starting = self.state { self.state = .idle }
                throw error
            }
            .flatMapThrowing { channel in
                guard case .starting = self.state else {
                    // Stopped while binding.
                    channel.close(promise: nil)
                    throw TFTPServerError.alreadyStarted
                }
                self.state = .running(channel)
                self.listenerAddress = channel.localAddress
                self.logger.info(
                    "tftp server listening",
                    metadata: [
                        "tftp.address": "\(Self.text(channel.localAddress))", "tftp.root": "\(self.configuration.root)",
                    ]
                )
                return channel.localAddress ?? address
            }
            .nonisolated()
    }

    func stop(gracePeriod: Duration) -> EventLoopFuture<Void> {
        let closed: EventLoopFuture<Void>
        switch self.state {
        case .idle:
            self.state = .stopped
            return self.eventLoop.makeSucceededVoidFuture()
        case .stopped:
            return self.eventLoop.makeSucceededVoidFuture()
        case .starting, .stopping:
            self.state = .stopping
            closed = self.eventLoop.makeSucceededVoidFuture()
        case .running(let channel):
            self.state = .stopping
            closed = channel.close().recover { _ in }
            self.logger.info(
                "tftp server stopping",
                metadata: ["tftp.active_transfers": "\(self.transfers.count)", "tftp.grace_period": "\(gracePeriod)"]
            )
        }
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.stopPromises.append(promise)
        if self.gracePeriodTimer == nil {
            self.gracePeriodTimer = self.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(gracePeriod)) {
                for transfer in self.transfers.values {
                    transfer.abort(.shutdown)
                }
            }
        }
        self.completeStopIfIdle()
        return closed.and(promise.futureResult).map { _ in }
    }

    private func completeStopIfIdle() {
        guard case .stopping = self.state, self.transfers.isEmpty, !self.stopPromises.isEmpty else { return }
        self.state = .stopped
        self.gracePeriodTimer?.cancel()
        self.gracePeriodTimer = nil
        let promises = self.stopPromises
        self.stopPromises = []
        self.logger.info("tftp server stopped")
        for promise in promises {
            promise.succeed()
        }
    }

    // MARK: Requests

    /// A datagram on the request socket.
    func handleRequest(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard case .running = self.state else { return }
        let client = envelope.remoteAddress
        switch self.admission.admit(envelope.data.readableBytesView) {
        case .ignore:
            self.metrics.datagramsDropped.increment()
        case .reject(let packet):
            self.refuse(packet, client: client, requested: Self.requestedName(envelope.data), envelope: envelope)
        case .serve(let request, let path):
            guard self.unansweredRequests[client]?.request != request else {
                // A retransmitted request: the client has not seen our first answer yet.
                self.admission.release()
                self.metrics.datagramsDropped.increment()
                return
            }
            let source: TFTPFileSource
            do {
                source = try self.openSource(request: request, path: path, client: client)
            } catch {
                self.admission.release()
                self.refuse(error.errorPacket, client: client, requested: request.fileName, envelope: envelope)
                return
            }
            self.startTransfer(request: request, path: path, source: source, client: client, envelope: envelope)
        }
    }

    private func openSource(
        request: TFTPRequest,
        path: TFTPPath,
        client: SocketAddress
    ) throws(TFTPRequestRefusal) -> TFTPFileSource {
        if let virtualFiles = self.configuration.virtualFiles,
            let bytes = virtualFiles.contents(of: path, for: client)
        {
            let content = request.mode == .netascii ? TFTPNetascii.encode(bytes) : bytes
            return TFTPFileSource(bytes: ByteBuffer(bytes: content))
        }
        let resolved: ResolvedFile
        do {
            resolved = try TFTPPathResolver.resolve(
                path,
                root: self.configuration.root,
                inspector: LocalFileSystemInspector()
            )
        } catch {
            throw .path(error)
        }
        return try TFTPFileSource.opening(path: resolved.path, mode: request.mode)
    }

    private func startTransfer(
        request: TFTPRequest,
        path: TFTPPath,
        source: TFTPFileSource,
        client: SocketAddress,
        envelope: AddressedEnvelope<ByteBuffer>
    ) {
        let now = ContinuousClock.now
        let limits = self.configuration.limits
        let parameters = TFTPTransferParameters(
            negotiating: request.options,
            fileSize: source.size,
            configuration: limits
        )
        let transfer = TFTPTransfer(fileSize: source.size, parameters: parameters, configuration: limits, now: now)
        let socket: TFTPTransferSocket
        do {
            socket = try TFTPTransferSocket(
                boundTo: self.transferAddress(for: envelope),
                client: client,
                tick: TFTPTransferRunner.tick(for: parameters.timeout)
            )
        } catch {
            source.close()
            self.admission.release()
            self.metrics.transferEnded(.socketFailed("\(error)"))
            self.logger.warning(
                "tftp transfer socket failed",
                metadata: ["tftp.file": "\(path)", "tftp.client": "\(Self.text(client))", "error": "\(error)"]
            )
            return
        }
        let runner = TFTPTransferRunner(
            core: self,
            client: client,
            fileName: path.description,
            source: source,
            transfer: transfer,
            socket: socket,
            started: now
        )
        self.transfers[ObjectIdentifier(runner)] = runner
        self.unansweredRequests[client] = (request, ObjectIdentifier(runner))
        self.metrics.requestsServed.increment()
        self.metrics.activeTransfers.record(self.transfers.count)
        self.logger.debug(
            "tftp transfer starting",
            metadata: [
                "tftp.file": "\(path)", "tftp.client": "\(Self.text(client))", "tftp.file_size": "\(source.size)",
                "tftp.options": "\(request.options.map { "\($0.name)=\($0.value)" }.joined(separator: " "))",
            ]
        )
        runner.start()
    }

    /// The client of `runner` sent its first packet to the transfer port.
    func clientAnswered(_ runner: TFTPTransferRunner) {
        if self.unansweredRequests[runner.client]?.transfer == ObjectIdentifier(runner) {
            self.unansweredRequests[runner.client] = nil
        }
    }

    /// A transfer ended: its slot is free again.
    func transferEnded(_ runner: TFTPTransferRunner) {
        guard self.transfers.removeValue(forKey: ObjectIdentifier(runner)) != nil else { return }
        self.clientAnswered(runner)
        self.admission.release()
        self.metrics.activeTransfers.record(self.transfers.count)
        self.completeStopIfIdle()
    }

    /// Sends `packet` to `client` from a fresh port, as a transfer would, then closes it.
    private func refuse(
        _ packet: TFTPPacket,
        client: SocketAddress,
        requested: String,
        envelope: AddressedEnvelope<ByteBuffer>
    ) {
        self.metrics.requestsRefused.increment()
        if case .error(let code, let message) = packet {
            self.logger.info(
                "tftp request refused",
                metadata: [
                    "tftp.file": "\(requested.prefix(256))", "tftp.client": "\(Self.text(client))",
                    "tftp.error": "\(code.rawValue) \(message)",
                ]
            )
        }
        let datagram = AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: packet.encoded()))
        DatagramBootstrap(group: self.eventLoop)
            .bind(to: self.transferAddress(for: envelope))
            .assumeIsolated()
            .whenSuccess { channel in
                channel.writeAndFlush(datagram).assumeIsolated().whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
    }

    /// The local address (port 0) for a transfer answering `envelope`: the address the request
    /// was sent to, so a multi-homed server answers from the address the client knows.
    private func transferAddress(for envelope: AddressedEnvelope<ByteBuffer>) -> SocketAddress {
        var address: SocketAddress
        if let destination = envelope.metadata?.packetInfo?.destinationAddress {
            address = destination
        } else if let listener = self.listenerAddress {
            address = listener
        } else {
            return try! SocketAddress(ipAddress: "0.0.0.0", port: 0)
        }
        address.port = 0
        return address
    }

    private static func requestedName(_ datagram: ByteBuffer) -> String {
        let bytes = datagram.readableBytesView.dropFirst(2).prefix(while: { $0 != 0 })
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `a.b.c.d:port` for logs.
    static func text(_ address: SocketAddress?) -> String {
        guard let address else { return "-" }
        if let endpoint = UDPEndpoint(address) { return endpoint.description }
        return "\(address)"
    }
}

/// The request socket's handler: hands each datagram to the core.
final class TFTPRequestHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let core: TFTPServerCore

    init(core: TFTPServerCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.core.handleRequest(self.unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.core.logger.debug("tftp request socket error", metadata: ["error": "\(error)"])
    }
}
