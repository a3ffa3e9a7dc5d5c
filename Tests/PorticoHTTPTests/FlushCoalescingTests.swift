import NIOCore
import NIOEmbedded
import Testing

@testable import PorticoHTTP

@Suite("Flush coalescing (HTTP/2 connections)")
struct FlushCoalescingTests {
    @Test func flushesOfOneTickLeaveTogetherAtItsEnd() throws {
        let channel = EmbeddedChannel(handler: FlushCoalescingHandler())
        defer { _ = try? channel.finish() }
        for text in ["a", "b"] {
            channel.write(ByteBuffer(string: text), promise: nil)
            channel.flush()
        }
        // Nothing left yet: the flush waits for the end of the tick.
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "a"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "b"))
        // The next tick's flush is scheduled again.
        channel.write(ByteBuffer(string: "c"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "c"))
    }
}
