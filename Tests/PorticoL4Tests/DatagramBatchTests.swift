import NIOCore
import Testing

@testable import PorticoL4

@Suite struct DatagramBatchTests {
    /// A datagram of `size` bytes whose bytes say which datagram it is.
    static func datagram(_ tag: Int, size: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        buffer.writeRepeatingByte(UInt8(truncatingIfNeeded: tag), count: size)
        return buffer
    }

    static func batch(_ sizes: [Int], limit: Int, prefix: ByteBuffer? = nil) -> DatagramBatch {
        var batch = DatagramBatch()
        for (index, size) in sizes.enumerated() {
            batch.append(Self.datagram(index, size: size), prefix: prefix, segmentLimit: limit, allocator: .init())
        }
        return batch
    }

    /// What a receiver gets: each segmented send split at its segment size.
    static func received(_ batch: DatagramBatch) -> [[UInt8]] {
        batch.sends.flatMap { send in send.datagrams.map { Array($0.readableBytesView) } }
    }

    static func expected(_ sizes: [Int], prefix: [UInt8] = []) -> [[UInt8]] {
        sizes.enumerated().map { prefix + [UInt8](repeating: UInt8(truncatingIfNeeded: $0.offset), count: $0.element) }
    }

    @Test func runsOfOneSizeBecomeOneSegmentedSend() {
        let sizes = [64, 64, 64, 64, 100, 64]
        let batch = Self.batch(sizes, limit: 512)
        // The 100-byte datagram leads a run of its own, which the shorter one after it ends.
        #expect(batch.sends.map(\.count) == [4, 2])
        #expect(batch.sends.map(\.segmentSize) == [64, 100])
        #expect(batch.sends.map(\.buffer.readableBytes) == [256, 164])
        #expect(Self.received(batch) == Self.expected(sizes))
        #expect(batch.count == 6 && batch.bytes == sizes.reduce(0, +))
    }

    @Test func aShorterDatagramEndsARun() {
        let sizes = [80, 80, 30, 80, 80, 80, 0, 5]
        let batch = Self.batch(sizes, limit: 512)
        #expect(batch.sends.map(\.count) == [3, 3, 1, 1])
        #expect(batch.sends.map(\.buffer.readableBytes) == [190, 240, 0, 5])
        #expect(Self.received(batch) == Self.expected(sizes))
    }

    @Test func withoutOffloadEveryDatagramIsItsOwnSend() {
        let sizes = [64, 64, 64]
        let batch = Self.batch(sizes, limit: 0)
        #expect(batch.sends.map(\.count) == [1, 1, 1])
        #expect(Self.received(batch) == Self.expected(sizes))
        // Datagrams above the limit are never part of a run.
        let large = Self.batch([600, 600, 600], limit: 512)
        #expect(large.sends.map(\.count) == [1, 1, 1])
    }

    @Test func runsStopAtTheSegmentAndByteLimits() {
        let many = [Int](repeating: 10, count: DatagramBatch.maximumSegments + 6)
        let batch = Self.batch(many, limit: 512)
        #expect(batch.sends.map(\.count) == [DatagramBatch.maximumSegments, 6])
        #expect(Self.received(batch) == Self.expected(many))

        let size = 1_400
        let heavy = [Int](repeating: size, count: 50)
        let heavyBatch = Self.batch(heavy, limit: 1_500)
        #expect(heavyBatch.sends.allSatisfy { $0.buffer.readableBytes <= DatagramBatch.maximumBytes })
        #expect(heavyBatch.sends.map(\.count) == [42, 8])
        #expect(Self.received(heavyBatch) == Self.expected(heavy))
    }

    @Test func aPrefixIsPartOfEveryDatagram() {
        let header = ByteBuffer(bytes: [0xAA, 0xBB])
        let sizes = [10, 10, 7, 10]
        let batch = Self.batch(sizes, limit: 512, prefix: header)
        #expect(batch.sends.map(\.segmentSize) == [12, 12])
        #expect(batch.sends.map(\.count) == [3, 1])
        #expect(Self.received(batch) == Self.expected(sizes, prefix: [0xAA, 0xBB]))
        #expect(batch.bytes == 45)
    }

    @Test func theBatchIsReusableAfterRemoveAll() {
        var batch = Self.batch([3, 4], limit: 512)
        #expect(batch.count == 2 && batch.bytes == 7)
        batch.removeAll()
        #expect(batch.isEmpty && batch.bytes == 0 && batch.sends.isEmpty)
        batch.append(Self.datagram(3, size: 2), segmentLimit: 512, allocator: .init())
        #expect(Self.received(batch) == [[3, 3]])
    }

    @Test func copiedDatagramsLeaveTheirReceiveBuffer() {
        var receive = ByteBufferAllocator().buffer(capacity: 65_536)
        receive.writeRepeatingByte(0x2a, count: 1_000)
        receive.writeString("dns query")
        receive.moveReaderIndex(forwardBy: 1_000)
        let slice = receive.readSlice(length: 9)!
        let copy = copyDatagram(slice, allocator: ByteBufferAllocator())
        #expect(copy == slice)
        #expect(copy.storageCapacity < 4_096, "still backed by the 64 KiB receive buffer")
    }
}
