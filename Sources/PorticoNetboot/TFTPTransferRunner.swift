import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs one `TFTPTransfer` on a thread of its own, with its own socket and plain blocking
/// system calls: performs the machine's actions (OACK, windows of DATA, ERROR), feeds it the
/// client's packets and its deadline, answers packets from any other port with ERROR 5
/// without disturbing the transfer, and logs and counts the transfer when it ends.
///
/// Why a thread and not a channel: a lockstep transfer moves one block per round trip, so its
/// speed is the server's time from an ACK to the next DATA. Through a NIO channel that was
/// about 8 us of user time per block here (a `SocketAddress` formatted with `inet_ntop` for
/// every datagram read, envelopes, pipeline and event-loop bookkeeping), against about 1 us
/// for dnsmasq. Here a block costs one `recvfrom` and one `sendmsg` (the file is read a
/// chunk at a time by `TFTPDataPackets`), like dnsmasq. Transfers are few (at most
/// `maximumConcurrentTransfers`) and long, so a thread each is cheap; the request socket,
/// admission and the server's bookkeeping stay on the event loop, which the runner tells
/// when the client first answers and when the transfer ends.
///
/// The thread waits for packets at most one tick (a quarter of the timeout, at most 100 ms),
/// then checks the deadline and whether it was asked to stop, so a retransmission is at most
/// a tick late and `abort` takes effect within a tick. Everything but `abort` is confined to
/// the runner's thread once `start` is called.
final class TFTPTransferRunner: @unchecked Sendable {
    /// The client's address and port (its transfer ID).
    let client: SocketAddress
    private let core: NIOLoopBound<TFTPServerCore>
    private let logger: Logger
    private let metrics: TFTPServerMetrics
    private let fileName: String
    private let started: ContinuousClock.Instant
    /// Set from any thread to end the transfer at the next tick.
    private let abortRequest = NIOLockedValueBox<TFTPTransferResult?>(nil)

    // Confined to the runner's thread.
    private let source: TFTPFileSource
    private var transfer: TFTPTransfer
    private var packets: TFTPDataPackets
    private let socket: TFTPTransferSocket
    private var bytesSent = 0
    private var ended = false
    private var clientAnswered = false

    /// The tick for a transfer whose timeout is `timeout`.
    static func tick(for timeout: Duration) -> Duration {
        min(max(timeout / 4, .milliseconds(1)), .milliseconds(100))
    }

    init(
        core: TFTPServerCore,
        client: SocketAddress,
        fileName: String,
        source: TFTPFileSource,
        transfer: TFTPTransfer,
        socket: TFTPTransferSocket,
        started: ContinuousClock.Instant
    ) {
        self.core = NIOLoopBound(core, eventLoop: core.eventLoop)
        self.logger = core.logger
        self.metrics = core.metrics
        self.client = client
        self.fileName = fileName
        self.source = source
        self.transfer = transfer
        self.socket = socket
        self.started = started
        self.packets = TFTPDataPackets(
            blockSize: transfer.parameters.blockSize,
            windowSize: transfer.parameters.windowSize,
            fileSize: transfer.fileSize
        )
    }

    /// Starts the transfer's thread.
    func start() {
        let thread = Thread { self.run() }
        thread.name = "portico-tftp"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// Ends the transfer from outside (server shutdown) within a tick. Any thread.
    func abort(_ result: TFTPTransferResult) {
        self.abortRequest.withLockedValue { request in
            if request == nil { request = result }
        }
    }

    // MARK: The thread

    private func run() {
        self.perform(self.transfer.start(now: .now))
        // Large enough for any packet a client sends (requests and options are short).
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
        defer { buffer.deallocate() }
        while !self.ended {
            if let request = self.abortRequest.withLockedValue({ $0 }) {
                self.finish(request)
                break
            }
            switch self.socket.receive(into: buffer) {
            case .fromClient(let length):
                guard let packet = Self.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<length])) else {
                    self.metrics.datagramsDropped.increment()
                    break
                }
                if !self.clientAnswered {
                    self.clientAnswered = true
                    self.core.eventLoop.execute { self.core.value.clientAnswered(self) }
                }
                self.perform(self.transfer.receive(packet, now: .now))
            case .fromElsewhere(let length):
                self.answerUnknownTransferID(opcode: length >= 2 ? UInt16(buffer[0]) << 8 | UInt16(buffer[1]) : nil)
            case .nothing:
                break
            case .failed(let error):
                self.finish(.socketFailed("recvfrom: \(String(cString: strerror(error)))"))
            }
            if !self.ended, let deadline = self.transfer.deadline {
                let now = ContinuousClock.now
                if now >= deadline {
                    self.perform(self.transfer.timerFired(now: now))
                }
            }
        }
    }

    private func perform(_ action: TFTPTransfer.Action) {
        switch action {
        case .wait:
            break
        case .send(let packet):
            self.send(packet)
        case .sendBlocks(let run):
            self.send(run)
        case .sendErrorAndEnd(let packet, let outcome):
            self.send(packet)
            self.finish(.outcome(outcome))
        case .end(let outcome):
            self.finish(.outcome(outcome))
        }
    }

    private func send(_ run: TFTPBlockRun) {
        if let failure = self.packets.load(run, from: self.source) {
            self.send(.error(.notDefined, message: "Read error"))
            self.finish(.readFailed(errno: failure))
            return
        }
        let blocks = run.firstBlock..<(run.firstBlock + run.count)
        if let failure = self.packets.withPacketVectors(blocks, { self.socket.sendToClient($0) }) {
            self.finish(.socketFailed("sendmsg: \(String(cString: strerror(failure)))"))
            return
        }
        let payloadBytes = self.packets.payloadBytes(blocks)
        self.bytesSent += payloadBytes
        self.metrics.bytesSent.increment(by: payloadBytes)
    }

    private func send(_ packet: TFTPPacket) {
        self.socket.sendToClient(packet.encoded())
    }

    /// A packet from another port: ERROR 5 to its sender, the transfer goes on (RFC 1350).
    /// An ERROR is never answered, so two servers cannot ping-pong.
    private func answerUnknownTransferID(opcode: UInt16?) {
        self.metrics.unknownTransferIDPackets.increment()
        guard opcode != 5 else { return }
        self.socket.sendToSource(TFTPPacket.error(.unknownTransferID, message: "Unknown transfer ID").encoded())
    }

    /// Decodes a client packet; ACKs, nearly all of them, without allocating.
    private static func decode(_ bytes: UnsafeRawBufferPointer) -> TFTPPacket? {
        if bytes.count == 4, bytes[0] == 0, bytes[1] == 4 {
            return .acknowledgement(block: UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
        }
        return try? TFTPPacket(decoding: bytes)
    }

    // MARK: End

    private func finish(_ result: TFTPTransferResult) {
        guard !self.ended else { return }
        self.ended = true
        self.source.close()
        self.socket.close()
        let duration = ContinuousClock.now - self.started
        self.metrics.transferEnded(result)
        self.metrics.retransmissions.increment(by: self.transfer.retransmissions)
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        self.metrics.transferDuration.recordNanoseconds(nanoseconds)
        self.logger.info(
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
        self.core.eventLoop.execute { self.core.value.transferEnded(self) }
    }
}
