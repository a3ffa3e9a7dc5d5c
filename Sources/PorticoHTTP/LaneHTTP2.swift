#if os(Linux)
// HTTP/2 on the fast lane (docs/architecture.md, "HTTP/2 on the fast lane"): the frame layer
// (RFC 9113 sections 4-6), the connection's and streams' state and flow control, HPACK by
// NIOHPACK's coder (used without NIOHTTP2's channel handler). The lane turns each stream into
// an HTTP/1.1 exchange of its own (HTTPFastLane+HTTP2 in HTTPFastLane.swift): the request
// block becomes an HTTP/1.1 head, the HTTP/1.1 response becomes HEADERS and DATA frames.

import NIOCore
import NIOHPACK
import NIOHTTP1

/// One frame read from a client.
struct LaneHTTP2Frame {
    enum Kind: UInt8 {
        case data = 0x0
        case headers = 0x1
        case priority = 0x2
        case resetStream = 0x3
        case settings = 0x4
        case pushPromise = 0x5
        case ping = 0x6
        case goAway = 0x7
        case windowUpdate = 0x8
        case continuation = 0x9
    }

    /// `nil` for a type this side does not know (ignored, RFC 9113 section 4.1).
    var kind: Kind?
    var flags: UInt8
    var stream: UInt32
    /// The payload as sent (padding included).
    var payload: ByteBuffer

    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
    static let padded: UInt8 = 0x8
    static let priorityFlag: UInt8 = 0x20

    static let headerSize = 9
}

/// HTTP/2 error codes (RFC 9113 section 7).
enum LaneHTTP2Code: UInt32 {
    case noError = 0x0
    case protocolError = 0x1
    case internalError = 0x2
    case flowControlError = 0x3
    case streamClosed = 0x5
    case frameSizeError = 0x6
    case refusedStream = 0x7
    case cancel = 0x8
    case compressionError = 0x9
    case enhanceYourCalm = 0xb
}

/// A connection error: GOAWAY with `code`, then the connection closes.
struct LaneHTTP2ConnectionError: Error {
    var code: LaneHTTP2Code
    var reason: String
}

/// Reading and writing frames.
enum LaneHTTP2Wire {
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// Whether `buffer` starts with the connection preface (`true`), cannot (`false`), or is a
    /// part of it too short to tell (`nil`).
    static func startsWithPreface(_ buffer: ByteBuffer) -> Bool? {
        let count = min(buffer.readableBytes, Self.preface.count)
        let matches = buffer.withUnsafeReadableBytes { bytes in
            (0..<count).allSatisfy { bytes[$0] == Self.preface[$0] }
        }
        guard matches else { return false }
        return count == Self.preface.count ? true : nil
    }

    /// The next whole frame in `buffer`, or nil when it is not all there yet. Throws
    /// FRAME_SIZE_ERROR for a frame larger than `maxFrameSize`.
    static func next(_ buffer: inout ByteBuffer, maxFrameSize: Int) throws(LaneHTTP2ConnectionError) -> LaneHTTP2Frame?
    {
        guard buffer.readableBytes >= LaneHTTP2Frame.headerSize,
            let high = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let low = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self),
            let type = buffer.getInteger(at: buffer.readerIndex + 3, as: UInt8.self),
            let flags = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self),
            let stream = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt32.self)
        else { return nil }
        let length = Int(high) << 16 | Int(low)
        guard length <= maxFrameSize else {
            throw LaneHTTP2ConnectionError(code: .frameSizeError, reason: "a frame of \(length) bytes")
        }
        guard buffer.readableBytes >= LaneHTTP2Frame.headerSize + length else { return nil }
        buffer.moveReaderIndex(forwardBy: LaneHTTP2Frame.headerSize)
        let payload = buffer.readSlice(length: length)!
        return LaneHTTP2Frame(
            kind: LaneHTTP2Frame.Kind(rawValue: type),
            flags: flags,
            stream: stream & 0x7fff_ffff,
            payload: payload
        )
    }

    /// The payload of a DATA or HEADERS frame without its padding (and, for HEADERS, the
    /// priority fields); nil when the padding is longer than the frame.
    static func unpadded(_ frame: LaneHTTP2Frame) -> ByteBuffer? {
        var payload = frame.payload
        var padding = 0
        if frame.flags & LaneHTTP2Frame.padded != 0 {
            guard let length = payload.readInteger(as: UInt8.self) else { return nil }
            padding = Int(length)
        }
        if frame.kind == .headers, frame.flags & LaneHTTP2Frame.priorityFlag != 0 {
            guard payload.readableBytes >= 5 else { return nil }
            payload.moveReaderIndex(forwardBy: 5)
        }
        guard padding <= payload.readableBytes else { return nil }
        return payload.getSlice(at: payload.readerIndex, length: payload.readableBytes - padding)
    }

    static func writeHeader(
        _ kind: LaneHTTP2Frame.Kind,
        flags: UInt8,
        stream: UInt32,
        length: Int,
        into buffer: inout ByteBuffer
    ) {
        buffer.writeInteger(UInt8(truncatingIfNeeded: length >> 16))
        buffer.writeInteger(UInt16(truncatingIfNeeded: length))
        buffer.writeInteger(kind.rawValue)
        buffer.writeInteger(flags)
        buffer.writeInteger(stream)
    }

    static func writeSettings(_ settings: [(UInt16, UInt32)], into buffer: inout ByteBuffer) {
        Self.writeHeader(.settings, flags: 0, stream: 0, length: 6 * settings.count, into: &buffer)
        for (identifier, value) in settings {
            buffer.writeInteger(identifier)
            buffer.writeInteger(value)
        }
    }

    static func writeWindowUpdate(stream: UInt32, increment: Int, into buffer: inout ByteBuffer) {
        Self.writeHeader(.windowUpdate, flags: 0, stream: stream, length: 4, into: &buffer)
        buffer.writeInteger(UInt32(increment))
    }

    static func writeReset(stream: UInt32, code: LaneHTTP2Code, into buffer: inout ByteBuffer) {
        Self.writeHeader(.resetStream, flags: 0, stream: stream, length: 4, into: &buffer)
        buffer.writeInteger(code.rawValue)
    }

    static func writeGoAway(lastStream: UInt32, code: LaneHTTP2Code, into buffer: inout ByteBuffer) {
        Self.writeHeader(.goAway, flags: 0, stream: 0, length: 8, into: &buffer)
        buffer.writeInteger(lastStream)
        buffer.writeInteger(code.rawValue)
    }

    /// A header block as HEADERS (and CONTINUATION frames when it is larger than a frame).
    static func writeHeaders(
        _ block: ByteBuffer,
        stream: UInt32,
        endStream: Bool,
        maxFrameSize: Int,
        into buffer: inout ByteBuffer
    ) {
        var block = block
        var kind = LaneHTTP2Frame.Kind.headers
        repeat {
            let length = min(block.readableBytes, maxFrameSize)
            let last = length == block.readableBytes
            var flags: UInt8 = last ? LaneHTTP2Frame.endHeaders : 0
            if kind == .headers, endStream { flags |= LaneHTTP2Frame.endStream }
            Self.writeHeader(kind, flags: flags, stream: stream, length: length, into: &buffer)
            var part = block.readSlice(length: length)!
            buffer.writeBuffer(&part)
            kind = .continuation
        } while block.readableBytes > 0
    }

    /// DATA frames of at most `maxFrameSize` bytes each; END_STREAM on the last when asked.
    static func writeData(
        _ data: inout ByteBuffer,
        count: Int,
        stream: UInt32,
        endStream: Bool,
        maxFrameSize: Int,
        into buffer: inout ByteBuffer
    ) {
        var left = count
        repeat {
            let length = min(left, maxFrameSize)
            left -= length
            let flags: UInt8 = left == 0 && endStream ? LaneHTTP2Frame.endStream : 0
            Self.writeHeader(.data, flags: flags, stream: stream, length: length, into: &buffer)
            var part = data.readSlice(length: length)!
            buffer.writeBuffer(&part)
        } while left > 0
    }
}

/// The state of one HTTP/2 connection the lane serves (``HTTPFastLane/Client/http2``).
final class LaneHTTP2Connection {
    /// Our settings: the protocol's initial window for streams, the connection's receive
    /// window given back as DATA arrives.
    static let initialWindow = 65535
    static let windowUpdateThreshold = 32 * 1024
    /// As NIOHTTP2 (the engine): more than this many streams reset by the client within
    /// ``resetWindow`` ends the connection (rapid reset, CVE-2023-44487).
    static let maxResets = 200
    static let resetWindow: UInt64 = 30_000_000_000
    /// A header block (with its CONTINUATION frames) larger than this, or in more frames,
    /// ends the connection.
    static let maxHeaderBlock = 256 * 1024
    /// (NIOHTTP2, the engine's, allows 5; a block the header limits allow fits in far fewer.)
    static let maxContinuationFrames = 16

    let maxConcurrentStreams: Int
    var prefaceRead = false
    var settingsRead = false
    var decoder: HPACKDecoder
    var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
    var streams: [UInt32: LaneHTTP2Stream] = [:]
    var lastStreamID: UInt32 = 0
    /// The client's settings.
    var peerInitialWindow = 65535
    var peerMaxFrameSize = 16384
    /// Connection windows: what we may send, what the client sent and we did not give back.
    var sendWindow = 65535
    var unacknowledged = 0
    /// A header block being read: its stream, bytes so far, and whether it ends the stream.
    var continuation: (stream: UInt32, block: ByteBuffer, endStream: Bool)?
    var continuationFrames = 0
    /// GOAWAY sent (no new streams): the connection closes once its streams are gone.
    var goingAway = false
    /// GOAWAY received: the same.
    var peerGoingAway = false
    /// Streams whose response waits for a window or for the connection's output to drain.
    var blocked: [LaneHTTP2Stream] = []
    /// Streams whose request head waits to see whether a body follows (until the read ends).
    var pendingHeads: [LaneHTTP2Stream] = []
    /// Client resets counted for rapid-reset protection, since `resetsSince`.
    var resets = 0
    var resetsSince: UInt64 = 0
    /// Past the reset limit through resets the client provoked: the connection ends.
    var tooManyResets = false
    /// Over TLS (the scheme forwarded, the policy applied).
    let overTLS: Bool

    init(maxConcurrentStreams: Int, maxHeaderListSize: Int, overTLS: Bool) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.overTLS = overTLS
        self.decoder = HPACKDecoder(
            allocator: ByteBufferAllocator(),
            maxDynamicTableSize: HPACKDecoder.maxDynamicTableSize,
            maxHeaderListSize: max(maxHeaderListSize, 1024)
        )
    }

    /// What the server sends first: its SETTINGS.
    func start(into buffer: inout ByteBuffer, maxHeaderListSize: Int) {
        LaneHTTP2Wire.writeSettings(
            [
                (0x3, UInt32(clamping: self.maxConcurrentStreams)),
                (0x6, UInt32(clamping: maxHeaderListSize)),
                (0x4, UInt32(Self.initialWindow)),
            ],
            into: &buffer
        )
    }

    /// Applies a client's SETTINGS payload; returns the change of the initial stream window.
    func applySettings(_ payload: ByteBuffer) throws(LaneHTTP2ConnectionError) -> Int {
        guard payload.readableBytes % 6 == 0 else {
            throw LaneHTTP2ConnectionError(code: .frameSizeError, reason: "SETTINGS of \(payload.readableBytes) bytes")
        }
        var payload = payload
        var delta = 0
        while let identifier = payload.readInteger(as: UInt16.self), let value = payload.readInteger(as: UInt32.self) {
            switch identifier {
            case 0x1:  // HEADER_TABLE_SIZE: the encoder's table, at most its default.
                try? self.encoder.setDynamicTableSize(min(Int(value), HPACKEncoder.defaultDynamicTableSize))
            case 0x2:
                guard value <= 1 else {
                    throw LaneHTTP2ConnectionError(code: .protocolError, reason: "ENABLE_PUSH \(value)")
                }
            case 0x4:
                guard value <= 0x7fff_ffff else {
                    throw LaneHTTP2ConnectionError(code: .flowControlError, reason: "INITIAL_WINDOW_SIZE \(value)")
                }
                delta += Int(value) - self.peerInitialWindow
                self.peerInitialWindow = Int(value)
            case 0x5:
                guard value >= 16384 && value <= 16_777_215 else {
                    throw LaneHTTP2ConnectionError(code: .protocolError, reason: "MAX_FRAME_SIZE \(value)")
                }
                self.peerMaxFrameSize = Int(value)
            default:
                break  // MAX_CONCURRENT_STREAMS (ours to push: none), MAX_HEADER_LIST_SIZE, unknown
            }
        }
        return delta
    }

    /// Counts a client's reset; false once there were too many (rapid reset).
    func countReset(now: UInt64) -> Bool {
        if now &- self.resetsSince > Self.resetWindow {
            self.resetsSince = now
            self.resets = 0
        }
        self.resets += 1
        return self.resets <= Self.maxResets
    }
}

/// One stream of a ``LaneHTTP2Connection``: its exchange is an ``HTTPFastLane/Client`` of
/// its own (`exchange`), whose input is the request as HTTP/1.1 bytes and whose output, the
/// HTTP/1.1 response, is turned into frames here.
final class LaneHTTP2Stream {
    enum State {
        /// The exchange is in progress.
        case active
        /// The response ended before the request: what still comes is read and dropped for
        /// ``LaneHTTP2Stream/discardTime`` (or ``LaneHTTP2Stream/discardLimit`` bytes), then
        /// the stream is reset (the exchange's deadline, in ``HTTPFastLane/Client/State/lingering``).
        case discarding
    }

    static let discardLimit = 64 * 1024
    static let discardTime: UInt64 = 2_000_000_000

    let id: UInt32
    /// The connection's client (the socket), and the stream's exchange while it runs. (The
    /// cycle through the connection's table ends when the stream leaves it.)
    let connection: HTTPFastLane.Client
    var exchange: HTTPFastLane.Client?
    var state = State.active
    /// The request's method (for the access log) and whether it is a HEAD.
    let answeringHEAD: Bool
    /// Request side.
    var requestEnded: Bool
    var remainingLength: Int?
    /// The body goes upstream chunked (no content-length in the request).
    var chunked = false
    /// The head waits for the next frame to tell whether a body follows.
    var pendingHead: HTTPRequestHead?
    /// Received and not given back as window.
    var unacknowledged = 0
    var discarded = 0
    /// Response side: what we may send, the HTTP/1.1 response being read, a head and DATA
    /// not written yet. (Heads are HPACK-encoded as they are written: blocks must reach the
    /// client in the order they were encoded, the dynamic table depends on it.)
    var sendWindow: Int
    var decoder = HTTP1ResponseDecoder(limits: UpstreamConnection.responseLimits)
    var heldHead: HTTPResponseHead?
    var held = ByteBuffer()
    /// The response ended (its END_STREAM may still wait in `held`).
    var responseEnded = false
    var trailers: HTTPHeaders?
    /// END_STREAM went out.
    var endWritten = false
    var isBlocked = false
    /// In the connection's ``LaneHTTP2Connection/blocked`` list (once at most).
    var listed = false
    /// DATA went out since the relay last looked (its idle deadline moves).
    var wroteData = false
    /// The RST_STREAM code sent when the stream ends before its response did (nil: none, the
    /// client reset it or it ended normally).
    var resetCode: LaneHTTP2Code? = .internalError

    init(id: UInt32, connection: HTTPFastLane.Client, sendWindow: Int, answeringHEAD: Bool, requestEnded: Bool) {
        self.id = id
        self.connection = connection
        self.sendWindow = sendWindow
        self.answeringHEAD = answeringHEAD
        self.requestEnded = requestEnded
        self.decoder.answeringHEAD = answeringHEAD
    }

    var isActive: Bool {
        if case .active = self.state { return true }
        return false
    }
}
#endif
