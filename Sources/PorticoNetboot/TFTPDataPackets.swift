import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The DATA packets of one transfer, read ahead from its source a chunk at a time: one read
/// fills the packets (opcode, block number, payload) of many consecutive blocks back to back,
/// and each block is then sent as a slice of them, without copying. A lockstep transfer thus
/// reads its file once per chunk rather than once per block, and a window sent again after a
/// timeout re-sends the very bytes it sent the first time.
///
/// Memory is bounded per transfer: one chunk, about `chunkBytes`, or one window when a window
/// is larger. Chunks hold whole windows, so windows that follow each other do not straddle
/// two chunks. A file that changes during the transfer is sent as it was when each chunk was
/// read; one that shrinks ends the transfer with a read error when a chunk comes up short.
/// Loop-confined.
struct TFTPDataPackets {
    /// The read-ahead per transfer when the window is smaller.
    static let defaultChunkBytes = 64 << 10

    /// Bytes per DATA block.
    let blockSize: Int
    /// The file's size.
    let fileSize: Int
    /// Blocks in the file, the last one short (possibly empty).
    let blockCount: Int
    /// Blocks read at once (unless fewer remain, or a larger run is asked for).
    let chunkBlocks: Int
    /// The first block held, counted from 1 without wrapping.
    private(set) var firstBlock = 1
    /// How many blocks are held from `firstBlock` on.
    private(set) var heldBlocks = 0
    private var buffer: ByteBuffer

    /// Packets for a file of `fileSize` bytes sent in blocks of `blockSize`, `windowSize` at a
    /// time, read about `chunkBytes` at a time.
    init(blockSize: Int, windowSize: Int, fileSize: Int, chunkBytes: Int = Self.defaultChunkBytes) {
        precondition(blockSize >= 1 && windowSize >= 1 && fileSize >= 0)
        self.blockSize = blockSize
        self.fileSize = fileSize
        self.blockCount = fileSize / blockSize + 1
        let fitting = max(chunkBytes / (blockSize + 4), 1)
        let wholeWindows = max(fitting / windowSize, 1) * windowSize
        self.chunkBlocks = min(wholeWindows, self.blockCount)
        self.buffer = ByteBufferAllocator().buffer(capacity: 0)
    }

    /// Whether every block of `run` is held.
    func holds(_ run: TFTPBlockRun) -> Bool {
        run.firstBlock >= self.firstBlock && run.firstBlock + run.count <= self.firstBlock + self.heldBlocks
    }

    /// Makes the packets of `run` available, reading a chunk from its first block on when
    /// some are not held. On failure returns the `errno` (0 when the file is now shorter) and
    /// holds nothing.
    mutating func load(_ run: TFTPBlockRun, from source: TFTPFileSource) -> Int32? {
        guard !self.holds(run) else { return nil }
        precondition(run.firstBlock >= 1 && run.firstBlock + run.count <= self.blockCount + 1)
        let count = min(max(run.count, self.chunkBlocks), self.blockCount - run.firstBlock + 1)
        let chunk = TFTPBlockRun(
            firstBlock: run.firstBlock,
            count: count,
            blockSize: self.blockSize,
            fileSize: self.fileSize
        )
        // Unique storage is reused in place; if a slice is still queued for writing, the
        // buffer moves to new storage and the old one goes when the write is done.
        self.buffer.clear(minimumCapacity: count * (self.blockSize + 4))
        self.heldBlocks = 0
        if let failure = source.appendDataPackets(chunk, to: &self.buffer) { return failure }
        self.firstBlock = run.firstBlock
        self.heldBlocks = count
        return nil
    }

    /// The DATA packet of `block` (counted from 1), which must be held.
    func packet(_ block: Int) -> ByteBuffer {
        precondition(block >= self.firstBlock && block < self.firstBlock + self.heldBlocks, "block not loaded")
        let offset = (block - self.firstBlock) * (self.blockSize + 4)
        return self.buffer.getSlice(at: self.buffer.readerIndex + offset, length: 4 + self.payloadLength(block))!
    }

    /// Calls `body` with one I/O vector per packet of `blocks` (held), pointing into the chunk.
    func withPacketVectors<Result>(
        _ blocks: Range<Int>,
        _ body: (UnsafeMutableBufferPointer<iovec>) -> Result
    ) -> Result {
        precondition(blocks.lowerBound >= self.firstBlock && blocks.upperBound <= self.firstBlock + self.heldBlocks)
        return self.buffer.withUnsafeReadableBytes { raw in
            withUnsafeTemporaryAllocation(of: iovec.self, capacity: blocks.count) { vectors in
                for (index, block) in blocks.enumerated() {
                    let offset = (block - self.firstBlock) * (self.blockSize + 4)
                    vectors[index] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + offset),
                        iov_len: 4 + self.payloadLength(block)
                    )
                }
                return body(vectors)
            }
        }
    }

    /// The payload bytes of `blocks`.
    func payloadBytes(_ blocks: Range<Int>) -> Int {
        guard let last = blocks.last else { return 0 }
        return min(last * self.blockSize, self.fileSize) - min((blocks.lowerBound - 1) * self.blockSize, self.fileSize)
    }

    private func payloadLength(_ block: Int) -> Int {
        min(self.blockSize, self.fileSize - (block - 1) * self.blockSize)
    }
}
