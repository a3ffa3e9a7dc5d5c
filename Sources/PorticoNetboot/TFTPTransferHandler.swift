import Logging
import NIOCore

/// Drives one `TFTPTransfer` on its own socket: performs the machine's actions (OACK, windows
/// of DATA read with `pread`, ERROR), feeds it the client's packets and its deadline, answers
/// packets from any other port with ERROR 5 without disturbing the transfer, and logs and
/// counts the transfer when it ends. Loop-confined.
final class TFTPTransferHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// The client's address and port (its transfer ID).
    let client: SocketAddress
    private let core: TFTPServerCore
    private let fileName: String
    private let source: TFTPFileSource
    private var transfer: TFTPTransfer
    private let started: ContinuousClock.Instant
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var timerDeadline: ContinuousClock.Instant?
    /// One buffer per window; each DATA datagram is a slice of it. Reused once the previous
    /// window's datagrams are written.
    private var window: ByteBuffer
    private var bytesSent = 0
    private var ended = false
    private var clientAnswered = false

    init(
        core: TFTPServerCore,
        client: SocketAddress,
        fileName: String,
        source: TFTPFileSource,
        transfer: TFTPTransfer,
        started: ContinuousClock.Instant
    ) {
        self.core = core
        self.client = client
        self.fileName = fileName
        self.source = source
        self.transfer = transfer
        self.started = started
        let blocks = min(transfer.parameters.windowSize, transfer.blockCount)
        self.window = ByteBufferAllocator().buffer(capacity: blocks * (transfer.parameters.blockSize + 4))
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        self.perform(self.transfer.start(now: .now), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(.socketFailed("closed"))
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        guard envelope.remoteAddress == self.client else {
            self.answerUnknownTransferID(envelope, context: context)
            return
        }
        guard let packet = Self.decode(envelope.data) else {
            self.core.metrics.datagramsDropped.increment()
            return
        }
        if !self.clientAnswered {
            self.clientAnswered = true
            self.core.clientAnswered(self)
        }
        self.perform(self.transfer.receive(packet, now: .now), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.core.logger.debug(
            "tftp transfer socket error",
            metadata: [
                "tftp.file": "\(self.fileName)", "tftp.client": "\(TFTPServerCore.text(self.client))",
                "error": "\(error)",
            ]
        )
    }

    /// Ends the transfer from outside (server shutdown, socket failure).
    func abort(_ result: TFTPTransferResult) {
        self.finish(result)
    }

    // MARK: Actions

    private func perform(_ action: TFTPTransfer.Action, context: ChannelHandlerContext) {
        switch action {
        case .wait:
            break
        case .send(let packet):
            self.send(packet, to: self.client, context: context)
        case .sendBlocks(let run):
            self.send(run, context: context)
        case .sendErrorAndEnd(let packet, let outcome):
            self.send(packet, to: self.client, context: context)
            self.finish(.outcome(outcome))
        case .end(let outcome):
            self.finish(.outcome(outcome))
        }
        self.armTimer(context: context)
    }

    private func send(_ run: TFTPBlockRun, context: ChannelHandlerContext) {
        self.window.clear(minimumCapacity: run.count * (run.blockSize + 4))
        if let failure = self.source.appendDataPackets(run, to: &self.window) {
            self.send(.error(.notDefined, message: "Read error"), to: self.client, context: context)
            self.finish(.readFailed(errno: failure))
            return
        }
        var start = self.window.readerIndex
        var payloadBytes = 0
        for block in run {
            let length = 4 + block.byteRange.count
            let datagram = self.window.getSlice(at: start, length: length)!
            context.write(
                self.wrapOutboundOut(AddressedEnvelope(remoteAddress: self.client, data: datagram)),
                promise: nil
            )
            start += length
            payloadBytes += block.byteRange.count
        }
        context.flush()
        self.bytesSent += payloadBytes
        self.core.metrics.bytesSent.increment(by: payloadBytes)
    }

    private func send(_ packet: TFTPPacket, to address: SocketAddress, context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(bytes: packet.encoded())
        context.writeAndFlush(
            self.wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: buffer)),
            promise: nil
        )
    }

    /// A packet from another port: ERROR 5 to its sender, the transfer goes on (RFC 1350).
    /// An ERROR is never answered, so two servers cannot ping-pong.
    private func answerUnknownTransferID(_ envelope: AddressedEnvelope<ByteBuffer>, context: ChannelHandlerContext) {
        self.core.metrics.unknownTransferIDPackets.increment()
        let opcode = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt16.self)
        guard opcode != 5 else { return }
        self.send(
            .error(.unknownTransferID, message: "Unknown transfer ID"),
            to: envelope.remoteAddress,
            context: context
        )
    }

    /// Decodes a client packet; ACKs, nearly all of them, without copying.
    private static func decode(_ buffer: ByteBuffer) -> TFTPPacket? {
        if buffer.readableBytes == 4, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 4,
            let block = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self)
        {
            return .acknowledgement(block: block)
        }
        return try? TFTPPacket(decoding: buffer.readableBytesView)
    }

    // MARK: Timer

    /// Keeps one timer at or before the machine's deadline. Progress moves the deadline later;
    /// the timer then fires early, the machine ignores it and the timer is set again, so a
    /// fast transfer schedules about one timer per timeout rather than one per window.
    private func armTimer(context: ChannelHandlerContext) {
        guard !self.ended, let deadline = self.transfer.deadline else {
            self.timer?.cancel()
            self.timer = nil
            self.timerDeadline = nil
            return
        }
        if self.timer != nil, let scheduled = self.timerDeadline, scheduled <= deadline { return }
        self.timer?.cancel()
        self.timerDeadline = deadline
        let delay = max(deadline - .now, .zero)
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) {
            self.timerFired()
        }
    }

    private func timerFired() {
        self.timer = nil
        self.timerDeadline = nil
        guard !self.ended, let context = self.context else { return }
        self.perform(self.transfer.timerFired(now: .now), context: context)
    }

    // MARK: End

    private func finish(_ result: TFTPTransferResult) {
        guard !self.ended else { return }
        self.ended = true
        self.timer?.cancel()
        self.timer = nil
        self.source.close()
        let duration = ContinuousClock.now - self.started
        let metrics = self.core.metrics
        metrics.transferEnded(result)
        metrics.retransmissions.increment(by: self.transfer.retransmissions)
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        metrics.transferDuration.recordNanoseconds(nanoseconds)
        self.core.logger.info(
            "tftp transfer ended",
            metadata: [
                "tftp.file": "\(self.fileName)",
                "tftp.client": "\(TFTPServerCore.text(self.client))",
                "tftp.outcome": "\(result)",
                "tftp.file_size": "\(self.source.size)",
                "tftp.bytes_sent": "\(self.bytesSent)",
                "tftp.duration_ms": "\(Double(nanoseconds / 100_000) / 10)",
                "tftp.retransmissions": "\(self.transfer.retransmissions)",
                "tftp.block_size": "\(self.transfer.parameters.blockSize)",
                "tftp.window_size": "\(self.transfer.parameters.windowSize)",
            ]
        )
        self.core.transferEnded(self)
        self.context?.close(promise: nil)
    }
}
