import NIOCore
import Testing

@testable import PorticoL4

@Suite struct DatagramCompactionTests {
    @Test func smallDatagramsLeaveTheirReceiveBuffer() {
        var receive = ByteBufferAllocator().buffer(capacity: 65_536)
        receive.writeRepeatingByte(0x2a, count: 1_000)
        receive.writeString("dns query")
        receive.moveReaderIndex(forwardBy: 1_000)
        let slice = receive.readSlice(length: 9)!
        let compacted = compactDatagram(slice, allocator: ByteBufferAllocator())
        #expect(compacted == slice)
        #expect(compacted.storageCapacity < 4_096, "still backed by the 64 KiB receive buffer")

        var large = ByteBufferAllocator().buffer(capacity: 65_536)
        large.writeRepeatingByte(1, count: 9_000)
        let kept = compactDatagram(large, allocator: ByteBufferAllocator())
        #expect(kept.storageCapacity == large.storageCapacity)
    }
}
