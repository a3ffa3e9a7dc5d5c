#if os(Linux)
import NIOCore
@testable import PorticoHTTP
import Testing

/// The lane's HTTP/2 frame layer (LaneHTTP2.swift); the protocol end to end is checked by the
/// engine's HTTP/2 suites run through the lane (`PORTICO_TEST_FAST_LANE=1`) and by
/// FastLaneTLSTests.
@Suite("Lane HTTP/2 frames")
struct LaneHTTP2Tests {
    private func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32, payload: [UInt8]) -> ByteBuffer {
        RawFrame.encode(type: type, flags: flags, stream: stream, payload: payload)
    }

    @Test func thePrefaceIsToldApartFromItsPartsAndFromOtherBytes() {
        let preface = ByteBuffer(bytes: LaneHTTP2Wire.preface)
        #expect(LaneHTTP2Wire.startsWithPreface(preface) == true)
        var longer = preface
        longer.writeString("more")
        #expect(LaneHTTP2Wire.startsWithPreface(longer) == true)
        #expect(LaneHTTP2Wire.startsWithPreface(ByteBuffer(string: "PRI * HT")) == nil)
        #expect(LaneHTTP2Wire.startsWithPreface(ByteBuffer()) == nil)
        #expect(LaneHTTP2Wire.startsWithPreface(ByteBuffer(string: "PRI * HTTP/1.1\r\n")) == false)
        #expect(LaneHTTP2Wire.startsWithPreface(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == false)
    }

    @Test func framesAreReadWholeOrNotAtAll() throws {
        var bytes = self.frame(type: 0x0, flags: 0x1, stream: 0x8000_0003, payload: Array("hello".utf8))
        var ping = self.frame(type: 0x6, stream: 0, payload: Array(repeating: 7, count: 8))
        bytes.writeBuffer(&ping)
        // Every prefix short of the first frame's end gives nothing and consumes nothing.
        for cut in 0..<14 {
            var part = bytes.getSlice(at: 0, length: cut)!
            #expect(try LaneHTTP2Wire.next(&part, maxFrameSize: 16384) == nil)
            #expect(part.readableBytes == cut)
        }
        let data = try #require(try LaneHTTP2Wire.next(&bytes, maxFrameSize: 16384))
        #expect(data.kind == .data && data.flags == 0x1)
        #expect(data.stream == 3, "the reserved bit is dropped")
        #expect(String(buffer: data.payload) == "hello")
        let pinged = try #require(try LaneHTTP2Wire.next(&bytes, maxFrameSize: 16384))
        #expect(pinged.kind == .ping && pinged.payload.readableBytes == 8)
        #expect(try LaneHTTP2Wire.next(&bytes, maxFrameSize: 16384) == nil)
        var unknown = self.frame(type: 0x42, stream: 1, payload: [1, 2])
        #expect(try LaneHTTP2Wire.next(&unknown, maxFrameSize: 16384)?.kind == nil)
    }

    @Test func aFrameLargerThanTheLimitIsAConnectionError() {
        var large = self.frame(type: 0x0, stream: 1, payload: Array(repeating: 0, count: 16385))
        #expect(throws: LaneHTTP2ConnectionError.self) { try LaneHTTP2Wire.next(&large, maxFrameSize: 16384) }
        // Its header alone is enough to tell.
        var header = large.getSlice(at: 0, length: 9)!
        #expect(throws: LaneHTTP2ConnectionError.self) { try LaneHTTP2Wire.next(&header, maxFrameSize: 16384) }
    }

    @Test func paddingAndPriorityFieldsAreStripped() throws {
        // DATA, PADDED: pad length 3, "abc", 3 bytes of padding.
        var padded = self.frame(type: 0x0, flags: 0x8, stream: 1, payload: [3] + Array("abc".utf8) + [0, 0, 0])
        let data = try #require(try LaneHTTP2Wire.next(&padded, maxFrameSize: 16384))
        #expect(LaneHTTP2Wire.unpadded(data).map { String(buffer: $0) } == "abc")
        // HEADERS, PADDED and PRIORITY: pad length 1, 5 bytes of priority, the block, 1 byte of padding.
        var headers = self.frame(
            type: 0x1,
            flags: 0x8 | 0x20 | 0x4,
            stream: 1,
            payload: [1] + [0, 0, 0, 0, 16] + Array("blk".utf8) + [0]
        )
        let block = try #require(try LaneHTTP2Wire.next(&headers, maxFrameSize: 16384))
        #expect(LaneHTTP2Wire.unpadded(block).map { String(buffer: $0) } == "blk")
        // Padding longer than the frame.
        var bad = self.frame(type: 0x0, flags: 0x8, stream: 1, payload: [9, 1, 2])
        let badFrame = try #require(try LaneHTTP2Wire.next(&bad, maxFrameSize: 16384))
        #expect(LaneHTTP2Wire.unpadded(badFrame) == nil)
    }

    @Test func largeBlocksAndBodiesAreSplitIntoFrames() throws {
        var out = ByteBuffer()
        let block = ByteBuffer(repeating: 0x61, count: 40_000)
        LaneHTTP2Wire.writeHeaders(block, stream: 5, endStream: true, maxFrameSize: 16384, into: &out)
        var frames: [LaneHTTP2Frame] = []
        while let frame = try LaneHTTP2Wire.next(&out, maxFrameSize: 16384) { frames.append(frame) }
        #expect(frames.map(\.kind) == [.headers, .continuation, .continuation])
        #expect(frames.map(\.payload.readableBytes) == [16384, 16384, 7232])
        #expect(frames.map(\.flags) == [0x1, 0x0, 0x4], "END_STREAM on HEADERS, END_HEADERS on the last")

        var body = ByteBuffer(repeating: 0x62, count: 20_000)
        LaneHTTP2Wire.writeData(&body, count: 18_000, stream: 5, endStream: true, maxFrameSize: 16384, into: &out)
        #expect(body.readableBytes == 2_000, "only `count` bytes are taken")
        let first = try #require(try LaneHTTP2Wire.next(&out, maxFrameSize: 16384))
        let second = try #require(try LaneHTTP2Wire.next(&out, maxFrameSize: 16384))
        #expect(first.payload.readableBytes == 16384 && first.flags == 0)
        #expect(second.payload.readableBytes == 1616 && second.flags == 0x1)
    }

    @Test func settingsChangeTheWindowsAndBadValuesAreRefused() throws {
        let connection = LaneHTTP2Connection(maxConcurrentStreams: 100, maxHeaderListSize: 32768, overTLS: false)
        var payload = ByteBuffer()
        payload.writeInteger(UInt16(0x4))
        payload.writeInteger(UInt32(16))
        payload.writeInteger(UInt16(0x5))
        payload.writeInteger(UInt32(32768))
        payload.writeInteger(UInt16(0x99))  // unknown: ignored
        payload.writeInteger(UInt32(1))
        #expect(try connection.applySettings(payload) == 16 - 65535)
        #expect(connection.peerInitialWindow == 16 && connection.peerMaxFrameSize == 32768)

        for (identifier, value) in [(UInt16(0x4), UInt32(1) << 31), (0x5, 100), (0x2, 2)] {
            var bad = ByteBuffer()
            bad.writeInteger(identifier)
            bad.writeInteger(value)
            #expect(throws: LaneHTTP2ConnectionError.self) { try connection.applySettings(bad) }
        }
        #expect(throws: LaneHTTP2ConnectionError.self) {
            try connection.applySettings(ByteBuffer(bytes: [0, 4, 0]))
        }
    }

    @Test func resetsAreCountedPerWindow() {
        let connection = LaneHTTP2Connection(maxConcurrentStreams: 100, maxHeaderListSize: 32768, overTLS: false)
        let start: UInt64 = 40_000_000_000
        for _ in 0..<LaneHTTP2Connection.maxResets { #expect(connection.countReset(now: start)) }
        #expect(!connection.countReset(now: start + 1))
        // A new window starts the count again.
        #expect(connection.countReset(now: start + LaneHTTP2Connection.resetWindow + 2))
    }
}
#endif
