import Foundation
import NIOCore
import Testing

@testable import PorticoNetboot

/// `TFTPDataPackets`: the DATA packets read ahead in chunks are exactly the file's blocks,
/// across chunk boundaries and the block-number wrap, and a window sent again is the same.
@Suite struct TFTPDataPacketsTests {
    /// A temporary file of `count` random bytes, opened as a transfer source.
    struct File {
        let path: String
        let bytes: [UInt8]
        let source: TFTPFileSource

        init(count: Int) throws {
            var generator = SystemRandomNumberGenerator()
            self.bytes = TFTPTestTree.randomBytes(count, using: &generator)
            self.path =
                FileManager.default.temporaryDirectory
                .appendingPathComponent("portico-tftp-packets-\(UUID().uuidString)").path
            try Data(self.bytes).write(to: URL(fileURLWithPath: self.path))
            self.source = try TFTPFileSource.opening(path: self.path, mode: .octet)
        }

        func remove() {
            self.source.close()
            try? FileManager.default.removeItem(atPath: self.path)
        }

        /// The DATA packet block `block` (from 1) must be.
        func expected(_ block: Int, blockSize: Int) -> [UInt8] {
            let start = min((block - 1) * blockSize, self.bytes.count)
            let end = min(start + blockSize, self.bytes.count)
            let number = UInt16(truncatingIfNeeded: block)
            return [0, 3, UInt8(number >> 8), UInt8(number & 0xFF)] + self.bytes[start..<end]
        }
    }

    func run(_ first: Int, _ count: Int, _ packets: TFTPDataPackets) -> TFTPBlockRun {
        TFTPBlockRun(firstBlock: first, count: count, blockSize: packets.blockSize, fileSize: packets.fileSize)
    }

    /// Every block of a file of 70,000 blocks (past the 65535 wrap), window after window, with
    /// chunks that hold several windows: each packet is the block's number and bytes, and the
    /// file is read once per chunk, not once per window.
    @Test(arguments: [(1, 40), (8, 100), (7, 64)])
    func everyBlockAcrossChunksAndTheWrap(windowSize: Int, chunkBytes: Int) throws {
        let blockSize = 8
        let file = try File(count: blockSize * 69_999 + 5)
        defer { file.remove() }
        var packets = TFTPDataPackets(
            blockSize: blockSize,
            windowSize: windowSize,
            fileSize: file.bytes.count,
            chunkBytes: chunkBytes
        )
        #expect(packets.blockCount == 70_000)
        #expect(packets.chunkBlocks % windowSize == 0)
        var block = 1
        var loads = 0
        while block <= packets.blockCount {
            let window = self.run(block, min(windowSize, packets.blockCount - block + 1), packets)
            if !packets.holds(window) { loads += 1 }
            #expect(packets.load(window, from: file.source) == nil)
            for index in block..<(block + window.count) {
                let packet = packets.packet(index)
                if index == 65_536 {
                    #expect(Array(packet.readableBytesView.prefix(4)) == [0, 3, 0, 0])
                }
                guard Array(packet.readableBytesView) == file.expected(index, blockSize: blockSize) else {
                    Issue.record("block \(index) differs")
                    return
                }
            }
            block += window.count
        }
        #expect(loads == (70_000 + packets.chunkBlocks - 1) / packets.chunkBlocks)
        #expect(packets.packet(70_000).readableBytes == 4 + 5)
    }

    /// A window sent again (timeout, or an ACK inside it) is the same bytes, whether it is
    /// still held or straddles the end of the chunk and makes a new one be read.
    @Test func retransmittedWindowsResendTheSameBytes() throws {
        let blockSize = 512
        let file = try File(count: blockSize * 100 + 17)
        defer { file.remove() }
        var packets = TFTPDataPackets(blockSize: blockSize, windowSize: 4, fileSize: file.bytes.count, chunkBytes: 8192)
        #expect(packets.chunkBlocks == 12)
        func send(_ first: Int, _ count: Int) -> [[UInt8]] {
            let window = self.run(first, count, packets)
            #expect(packets.load(window, from: file.source) == nil)
            return (first..<(first + count)).map { Array(packets.packet($0).readableBytesView) }
        }
        #expect(send(1, 4) == (1...4).map { file.expected($0, blockSize: blockSize) })
        let sent = send(9, 4)
        #expect(sent == (9...12).map { file.expected($0, blockSize: blockSize) })
        // A timeout: the same window again, still held.
        #expect(packets.holds(self.run(9, 4, packets)))
        #expect(send(9, 4) == sent)
        // ACK 10 inside the window: it restarts at 11 and runs past the chunk, so a chunk is
        // read from 11 on; blocks 11 and 12 are the same bytes as before.
        let restarted = send(11, 4)
        #expect(Array(restarted.prefix(2)) == Array(sent.suffix(2)))
        #expect(restarted == (11...14).map { file.expected($0, blockSize: blockSize) })
        #expect(packets.holds(self.run(11, 12, packets)))
        // A stale, earlier window (a timeout after the chunk moved on) is read again.
        #expect(send(1, 4) == (1...4).map { file.expected($0, blockSize: blockSize) })
        // The last window, short, with the final short block.
        #expect(send(97, 5) == (97...101).map { file.expected($0, blockSize: blockSize) })
        #expect(packets.packet(101).readableBytes == 4 + 17)
    }

    /// A window larger than a chunk is read whole; memory stays one window.
    @Test func windowLargerThanAChunkIsReadWhole() throws {
        let file = try File(count: 1468 * 64 + 1)
        defer { file.remove() }
        var packets = TFTPDataPackets(blockSize: 1468, windowSize: 64, fileSize: file.bytes.count, chunkBytes: 4096)
        #expect(packets.chunkBlocks == 64)
        let window = self.run(1, 64, packets)
        #expect(packets.load(window, from: file.source) == nil)
        #expect(Array(packets.packet(64).readableBytesView) == file.expected(64, blockSize: 1468))
    }

    /// A file that is multiple of the block size ends with an empty DATA block.
    @Test func multipleOfTheBlockSizeEndsWithAnEmptyPacket() throws {
        let file = try File(count: 1024)
        defer { file.remove() }
        var packets = TFTPDataPackets(blockSize: 512, windowSize: 1, fileSize: 1024)
        #expect(packets.blockCount == 3)
        #expect(packets.load(self.run(1, 1, packets), from: file.source) == nil)
        #expect(packets.holds(self.run(1, 3, packets)))
        #expect(Array(packets.packet(3).readableBytesView) == [0, 3, 0, 3])
    }

    /// Generated (in-memory) files go through the same path.
    @Test func memorySourceIsPacketizedToo() {
        let bytes = (0..<1000).map { UInt8($0 % 256) }
        let source = TFTPFileSource(bytes: ByteBuffer(bytes: bytes))
        var packets = TFTPDataPackets(blockSize: 300, windowSize: 2, fileSize: bytes.count)
        let window = TFTPBlockRun(firstBlock: 3, count: 2, blockSize: 300, fileSize: bytes.count)
        #expect(packets.load(window, from: source) == nil)
        #expect(Array(packets.packet(3).readableBytesView) == [0, 3, 0, 3] + bytes[600..<900])
        #expect(Array(packets.packet(4).readableBytesView) == [0, 3, 0, 4] + bytes[900..<1000])
    }

    /// A file that shrank: the chunk comes up short, nothing is held.
    @Test func shrunkFileFailsTheLoad() throws {
        let file = try File(count: 10_000)
        defer { file.remove() }
        var packets = TFTPDataPackets(blockSize: 512, windowSize: 1, fileSize: 10_000)
        #expect(truncate(file.path, 3000) == 0)
        #expect(packets.load(self.run(1, 1, packets), from: file.source) == 0)
        #expect(!packets.holds(self.run(1, 1, packets)))
    }
}
