import CPorticoUDP
import NIOCore
import NIOPosix
import Testing

@testable import PorticoL4

#if canImport(Glibc)
import Glibc
#endif

/// ``DatagramSender``'s answers to the kernel's, with a scripted transmit step.
@Suite struct DatagramSenderTests {
    /// Records what reached the "kernel", and answers each call from `script` (then accepts).
    final class FakeKernel {
        var script: [Result<Int, DatagramErrno>]
        /// Per accepted datagram: its bytes and segment size (0: plain).
        var accepted: [(bytes: [UInt8], segmentSize: UInt16)] = []
        var calls = 0

        init(_ script: [Result<Int, DatagramErrno>] = []) {
            self.script = script
        }

        func transmit(_ datagrams: UnsafeBufferPointer<portico_udp_datagram>) -> Result<Int, DatagramErrno> {
            self.calls += 1
            let answer = self.script.isEmpty ? .success(datagrams.count) : self.script.removeFirst()
            if case .success(let count) = answer {
                for datagram in datagrams.prefix(count) {
                    let bytes = UnsafeRawBufferPointer(start: datagram.base, count: datagram.length)
                    self.accepted.append((Array(bytes), datagram.segment_size))
                }
            }
            return answer
        }
    }

    static func send(_ sizes: [Int], limit: Int = 512) -> DatagramSend {
        var batch = DatagramBatch()
        for (index, size) in sizes.enumerated() {
            batch.append(DatagramBatchTests.datagram(index, size: size), segmentLimit: limit, allocator: .init())
        }
        precondition(batch.sends.count == 1)
        return batch.sends[0]
    }

    static func sender(_ kernel: FakeKernel) -> DatagramSender {
        DatagramSender { kernel.transmit($0) }
    }

    static func client() -> DatagramAddress {
        DatagramAddress(try! SocketAddress(ipAddress: "192.0.2.7", port: 5353))
    }

    @Test func partialSendsContinueWhereTheKernelStopped() {
        let client = Self.client()
        let kernel = FakeKernel([.success(1), .success(2)])
        let sender = Self.sender(kernel)
        for size in [10, 20, 30, 40] { sender.enqueue(Self.send([size]), to: client) }
        let (result, leftover) = sender.flush()
        #expect(result == DatagramSendResult())
        #expect(leftover.isEmpty && sender.isEmpty)
        #expect(kernel.calls == 3)
        #expect(kernel.accepted.map(\.bytes.count) == [10, 20, 30, 40])
    }

    @Test func aFullSocketBufferLeavesTheRestInOrder() {
        let client = Self.client()
        let kernel = FakeKernel([.success(1), .failure(DatagramErrno(code: EAGAIN))])
        let sender = Self.sender(kernel)
        for size in [10, 20, 30] { sender.enqueue(Self.send([size]), to: client) }
        let (result, leftover) = sender.flush()
        #expect(result == DatagramSendResult())
        #expect(leftover.map(\.send.buffer.readableBytes) == [20, 30])
        #expect(leftover.allSatisfy { $0.address === client })
        #expect(sender.isEmpty)
    }

    @Test func aRefusedRunIsSentAgainOneDatagramAtATime() {
        let client = Self.client()
        // EIO: IPsec on the route (or no checksum offload on an older kernel).
        let kernel = FakeKernel([.failure(DatagramErrno(code: EIO))])
        let sender = Self.sender(kernel)
        sender.enqueue(Self.send([64, 64, 64, 20]), to: client)
        sender.enqueue(Self.send([7]), to: client)
        let (result, leftover) = sender.flush()
        #expect(result.offloadRefused && result.dropped == 0 && result.fatalError == nil)
        #expect(leftover.isEmpty)
        #expect(kernel.accepted.map(\.bytes.count) == [64, 64, 64, 20, 7])
        #expect(kernel.accepted.allSatisfy { $0.segmentSize == 0 })
        #expect(kernel.accepted.map { $0.bytes.first } == [0, 1, 2, 3, 0])
    }

    @Test func refusedDatagramsAreDroppedAndCounted() {
        let client = Self.client()
        // Too large for the path, then no route: each loses its own datagram only.
        let kernel = FakeKernel([.failure(DatagramErrno(code: EMSGSIZE)), .failure(DatagramErrno(code: EHOSTUNREACH))])
        let sender = Self.sender(kernel)
        for size in [10, 20, 30] { sender.enqueue(Self.send([size]), to: client) }
        let (result, _) = sender.flush()
        #expect(result.dropped == 2 && result.fatalError == nil)
        #expect(kernel.accepted.map(\.bytes.count) == [30])
    }

    @Test func aConnectedSocketReportsFatalErrors() {
        let client = Self.client()
        // ICMP port unreachable came back: the flow's socket is done.
        let kernel = FakeKernel([.success(1), .failure(DatagramErrno(code: ECONNREFUSED))])
        let sender = Self.sender(kernel)
        for size in [10, 20, 30] { sender.enqueue(Self.send([size]), to: nil) }
        let (result, leftover) = sender.flush()
        #expect(result.fatalError == ECONNREFUSED && result.dropped == 2)
        #expect(leftover.isEmpty && sender.isEmpty)
        // On the listener (a destination per datagram) the same error drops one datagram.
        let listenerKernel = FakeKernel([.failure(DatagramErrno(code: ECONNREFUSED))])
        let listener = Self.sender(listenerKernel)
        for size in [10, 20] { listener.enqueue(Self.send([size]), to: client) }
        let (listenerResult, _) = listener.flush()
        #expect(listenerResult.fatalError == nil && listenerResult.dropped == 1)
        #expect(listenerKernel.accepted.map(\.bytes.count) == [20])
    }

    @Test func largeQueuesGoOutInCallsOfAtMostTheCapacity() {
        let client = Self.client()
        let kernel = FakeKernel()
        let sender = Self.sender(kernel)
        for index in 0..<(DatagramSender.capacity * 2 + 5) { sender.enqueue(Self.send([index % 50 + 1]), to: client) }
        _ = sender.flush()
        #expect(kernel.calls == 3)
        #expect(kernel.accepted.count == DatagramSender.capacity * 2 + 5)
    }

    #if os(Linux)
    /// The real kernel: with UDP checksums off (SO_NO_CHECK) it refuses segmented sends
    /// (EINVAL); every datagram must still arrive, in order.
    @Test(.enabled(if: DatagramSender.supportsSegmentation))
    func theKernelsRefusalOfSegmentationLosesNothing() async throws {
        let receiver = try await TestUDPSocket.start(echo: false)
        let descriptor = try UDPSocket.connected(to: receiver.address)
        defer { close(descriptor) }
        #expect(portico_udp_set_no_check(descriptor, 1) == 0)
        let sender = DatagramSender(descriptor: descriptor)
        var batch = DatagramBatch()
        let sizes = [48, 48, 48, 48, 48, 17, 48, 48]
        for (index, size) in sizes.enumerated() {
            batch.append(DatagramBatchTests.datagram(index, size: size), segmentLimit: 512, allocator: .init())
        }
        #expect(batch.sends.map(\.count) == [6, 2])
        for send in batch.sends { sender.enqueue(send, to: nil) }
        let (result, leftover) = sender.flush()
        #expect(result.offloadRefused)
        #expect(result.dropped == 0 && result.fatalError == nil && leftover.isEmpty)
        #expect(await TestSupport.eventually { receiver.received.count == sizes.count })
        #expect(
            receiver.received.map { Array($0.data.readableBytesView) } == DatagramBatchTests.expected(sizes)
        )
        await receiver.stop()
    }

    /// With offload accepted, a run arrives as the datagrams that went in.
    @Test(.enabled(if: DatagramSender.supportsSegmentation))
    func aSegmentedRunArrivesAsSeparateDatagrams() async throws {
        let receiver = try await TestUDPSocket.start(echo: false)
        let descriptor = try UDPSocket.connected(to: receiver.address)
        defer { close(descriptor) }
        let sender = DatagramSender(descriptor: descriptor)
        var batch = DatagramBatch()
        let sizes = [100, 100, 100, 100, 100, 100, 100, 100, 100, 33]
        for (index, size) in sizes.enumerated() {
            batch.append(DatagramBatchTests.datagram(index, size: size), segmentLimit: 512, allocator: .init())
        }
        for send in batch.sends { sender.enqueue(send, to: nil) }
        let (result, leftover) = sender.flush()
        #expect(result == DatagramSendResult() && leftover.isEmpty)
        #expect(await TestSupport.eventually { receiver.received.count == sizes.count })
        #expect(
            receiver.received.map { Array($0.data.readableBytesView) } == DatagramBatchTests.expected(sizes)
        )
        await receiver.stop()
    }
    #endif
}
