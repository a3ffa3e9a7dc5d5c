/// One read transfer, as a state machine (RFC 1350, 2347, 7440). It holds no file data:
/// it says which blocks to send and the shell reads their byte ranges. Time is passed in.
///
/// Blocks are counted from 1 without wrapping internally; the wire number wraps past 65535
/// to 0. A window of blocks is sent at once; an ACK of the window's last block advances, an
/// ACK inside the window restarts after the acknowledged block, a duplicate or stale ACK
/// is ignored (no Sorcerer's Apprentice), and a timeout resends the unacknowledged window.
public struct TFTPTransfer: Sendable {
    /// What the shell should do after an event.
    public enum Action: Hashable, Sendable {
        /// Nothing.
        case wait
        /// Send this packet (an OACK).
        case send(TFTPPacket)
        /// Send these DATA blocks, in order.
        case sendBlocks(TFTPBlockRun)
        /// Send this ERROR; the transfer is over.
        case sendErrorAndEnd(TFTPPacket, TFTPTransferOutcome)
        /// The transfer is over; send nothing more.
        case end(TFTPTransferOutcome)
    }

    private enum State: Hashable, Sendable {
        case created
        case awaitingOptionAcknowledgement
        case transferring
        case ended
    }

    /// The negotiated parameters.
    public let parameters: TFTPTransferParameters
    /// The file's size in bytes.
    public let fileSize: Int
    /// Number of DATA blocks, the last one short (possibly empty).
    public let blockCount: Int
    /// Blocks (and OACKs) sent again after a timeout.
    public private(set) var retransmissions = 0
    /// Highest block acknowledged.
    public private(set) var acknowledgedBlocks = 0
    /// When the shell should call `timerFired(now:)` next; `nil` once over.
    public private(set) var deadline: ContinuousClock.Instant?

    private var state = State.created
    private var sentThrough = 0
    private var timeoutsInARow = 0
    private let maximumRetransmissions: Int
    private let giveUpTime: ContinuousClock.Instant

    /// A transfer of `fileSize` bytes with negotiated `parameters`, begun at `now`.
    public init(
        fileSize: Int,
        parameters: TFTPTransferParameters,
        configuration: TFTPConfiguration,
        now: ContinuousClock.Instant
    ) {
        precondition(fileSize >= 0 && parameters.blockSize >= 1 && parameters.windowSize >= 1)
        self.fileSize = fileSize
        self.parameters = parameters
        self.blockCount = fileSize / parameters.blockSize + 1
        self.maximumRetransmissions = configuration.maximumRetransmissions
        self.giveUpTime = now + configuration.maximumTransferDuration
    }

    /// Whether the transfer is over.
    public var isEnded: Bool { self.state == .ended }

    /// Starts: sends the OACK when options were accepted, else the first window.
    public mutating func start(now: ContinuousClock.Instant) -> Action {
        guard self.state == .created else { return .wait }
        if self.parameters.acceptedOptions.isEmpty {
            self.state = .transferring
            return self.sendWindow(after: 0, now: now)
        }
        self.state = .awaitingOptionAcknowledgement
        self.deadline = now + self.parameters.timeout
        return .send(.optionAcknowledgement(self.parameters.acceptedOptions))
    }

    /// A packet from the client's port.
    public mutating func receive(_ packet: TFTPPacket, now: ContinuousClock.Instant) -> Action {
        switch (self.state, packet) {
        case (.ended, _), (.created, _):
            return .wait
        case (_, .error(let code, let message)):
            // Includes the EDK2 tsize probe: OACK, then ERROR 0 or 8. End quietly.
            return self.end(.abortedByClient(code, message: message))
        case (.awaitingOptionAcknowledgement, .acknowledgement(let block)):
            guard block == 0 else { return .wait }
            self.state = .transferring
            self.timeoutsInARow = 0
            return self.sendWindow(after: 0, now: now)
        case (.transferring, .acknowledgement(let block)):
            let outstanding = self.sentThrough - self.acknowledgedBlocks
            let advance = Int(block &- UInt16(truncatingIfNeeded: self.acknowledgedBlocks))
            guard advance > 0, advance <= outstanding else { return .wait }
            self.acknowledgedBlocks += advance
            self.timeoutsInARow = 0
            if self.acknowledgedBlocks == self.blockCount {
                return self.end(.completed)
            }
            return self.sendWindow(after: self.acknowledgedBlocks, now: now)
        case (_, _):
            self.state = .ended
            self.deadline = nil
            let outcome = TFTPTransferOutcome.protocolError(.illegalOperation)
            return .sendErrorAndEnd(.error(.illegalOperation, message: "Illegal TFTP operation"), outcome)
        }
    }

    /// The timer set for `deadline` fired (early calls do nothing).
    public mutating func timerFired(now: ContinuousClock.Instant) -> Action {
        guard let deadline = self.deadline, self.state != .ended else { return .wait }
        if now >= self.giveUpTime { return self.end(.timedOut) }
        guard now >= deadline else { return .wait }
        self.timeoutsInARow += 1
        guard self.timeoutsInARow <= self.maximumRetransmissions else { return self.end(.timedOut) }
        self.deadline = now + self.parameters.timeout
        switch self.state {
        case .awaitingOptionAcknowledgement:
            self.retransmissions += 1
            return .send(.optionAcknowledgement(self.parameters.acceptedOptions))
        case .transferring:
            let first = self.acknowledgedBlocks + 1
            self.retransmissions += self.sentThrough - self.acknowledgedBlocks
            return .sendBlocks(self.run(from: first, through: self.sentThrough))
        case .created, .ended:
            return .wait
        }
    }

    private mutating func sendWindow(after acknowledged: Int, now: ContinuousClock.Instant) -> Action {
        let first = acknowledged + 1
        self.sentThrough = min(acknowledged + self.parameters.windowSize, self.blockCount)
        self.deadline = min(now + self.parameters.timeout, self.giveUpTime)
        return .sendBlocks(self.run(from: first, through: self.sentThrough))
    }

    private mutating func end(_ outcome: TFTPTransferOutcome) -> Action {
        self.state = .ended
        self.deadline = nil
        return .end(outcome)
    }

    private func run(from first: Int, through last: Int) -> TFTPBlockRun {
        TFTPBlockRun(
            firstBlock: first,
            count: last - first + 1,
            blockSize: self.parameters.blockSize,
            fileSize: self.fileSize
        )
    }
}

/// How a transfer ended.
public enum TFTPTransferOutcome: Hashable, Sendable {
    /// The last block was acknowledged.
    case completed
    /// The client sent an ERROR (EDK2 does after probing `tsize`).
    case abortedByClient(TFTPErrorCode, message: String)
    /// The client stopped acknowledging, or the transfer took too long.
    case timedOut
    /// The client broke the protocol; we sent an ERROR with this code.
    case protocolError(TFTPErrorCode)
}

/// Consecutive DATA blocks to send: a sequence of wire block numbers and file byte ranges.
public struct TFTPBlockRun: Hashable, Sendable, Sequence {
    /// The first block, counted from 1 without wrapping.
    public var firstBlock: Int
    /// How many blocks.
    public var count: Int
    /// Bytes per block.
    public var blockSize: Int
    /// The file's size.
    public var fileSize: Int

    /// A run of `count` blocks from `firstBlock`.
    public init(firstBlock: Int, count: Int, blockSize: Int, fileSize: Int) {
        self.firstBlock = firstBlock
        self.count = count
        self.blockSize = blockSize
        self.fileSize = fileSize
    }

    /// One DATA block: its wire number and the bytes of the file it carries.
    public struct Block: Hashable, Sendable {
        /// The block number on the wire (wraps past 65535 to 0).
        public var number: UInt16
        /// The file bytes of this block (empty for the final block of a multiple-sized file).
        public var byteRange: Range<Int>
    }

    /// Iterates the blocks in order.
    public struct Iterator: IteratorProtocol {
        fileprivate let run: TFTPBlockRun
        fileprivate var block: Int

        /// The next block.
        public mutating func next() -> Block? {
            guard self.block < self.run.firstBlock + self.run.count else { return nil }
            defer { self.block += 1 }
            let start = Swift.min((self.block - 1) * self.run.blockSize, self.run.fileSize)
            let end = Swift.min(start + self.run.blockSize, self.run.fileSize)
            return Block(number: UInt16(truncatingIfNeeded: self.block), byteRange: start..<end)
        }
    }

    /// An iterator from the first block.
    public func makeIterator() -> Iterator {
        Iterator(run: self, block: self.firstBlock)
    }

    /// The blocks' wire numbers.
    public var blockNumbers: [UInt16] { self.map { $0.number } }
}
