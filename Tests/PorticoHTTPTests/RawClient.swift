import NIOCore
import NIOPosix
import NIOSSL

/// One parsed HTTP/1.1 response as seen on the wire.
struct TestResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String
    var bodyLength: Int
    var chunked: Bool

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func headers(_ name: String) -> [String] {
        self.headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}

struct ClientError: Error, CustomStringConvertible {
    var description: String
}

/// A raw TCP (optionally TLS) client that writes exact bytes and parses responses itself.
final class RawClient {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private var buffer = ByteBuffer()
    private(set) var sawEOF = false

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
        self.iterator = channel.inbound.makeAsyncIterator()
    }

    deinit {
        self.channel.outbound.finish()
    }

    static func connect(
        port: Int,
        group: any EventLoopGroup,
        tls: NIOSSLContext? = nil,
        serverName: String? = nil
    ) async throws -> RawClient {
        let channel = try await ClientBootstrap(group: group)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: serverName)
                        )
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return RawClient(channel: channel)
    }

    func send(_ text: String) async throws {
        try await self.channel.outbound.write(ByteBuffer(string: text))
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await self.channel.outbound.write(bytes)
    }

    func close() async {
        self.channel.outbound.finish()
        try? await self.channel.channel.close()
    }

    /// Reads more bytes; false at end of stream.
    private func fill() async throws -> Bool {
        guard !self.sawEOF else { return false }
        do {
            guard var next = try await self.iterator.next() else {
                self.sawEOF = true
                return false
            }
            self.buffer.writeBuffer(&next)
            return true
        } catch {
            self.sawEOF = true
            return false
        }
    }

    private func readLine() async throws -> String {
        while true {
            if let index = self.buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                var bytes = self.buffer.readBytes(length: index - self.buffer.readerIndex)!
                self.buffer.moveReaderIndex(forwardBy: 1)
                if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
                return String(decoding: bytes, as: UTF8.self)
            }
            guard try await self.fill() else { throw ClientError(description: "connection closed mid-line") }
        }
    }

    private func consume(_ count: Int, keep: Bool, into body: inout String) async throws {
        var remaining = count
        while remaining > 0 {
            if self.buffer.readableBytes == 0 {
                guard try await self.fill() else { throw ClientError(description: "connection closed mid-body") }
            }
            let take = min(remaining, self.buffer.readableBytes)
            if keep {
                body += self.buffer.readString(length: take)!
            } else {
                self.buffer.moveReaderIndex(forwardBy: take)
            }
            remaining -= take
        }
        self.buffer.discardReadBytes()
    }

    /// The next `count` bytes as they are.
    func readBytes(_ count: Int) async throws -> [UInt8] {
        while self.buffer.readableBytes < count {
            guard try await self.fill() else {
                throw ClientError(description: "connection closed after \(self.buffer.readableBytes) bytes")
            }
        }
        defer { if self.buffer.readerIndex > 1 << 20 { self.buffer.discardReadBytes() } }
        return self.buffer.readBytes(length: count)!
    }

    /// Reads one response; `keepBody: false` only counts body bytes (for large bodies).
    func readResponse(keepBody: Bool = true, headRequest: Bool = false) async throws -> TestResponse {
        let statusLine = try await self.readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw ClientError(description: "bad status line \(statusLine)")
        }
        var headers: [(String, String)] = []
        while true {
            let line = try await self.readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else {
                throw ClientError(description: "bad header line \(line.debugDescription) after \(statusLine)")
            }
            headers.append(
                (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
            )
        }
        var response = TestResponse(status: status, headers: headers, body: "", bodyLength: 0, chunked: false)
        if (100..<200).contains(status) || status == 204 || status == 304 || headRequest {
            return response
        }
        if let length = response.header("content-length").flatMap({ Int($0) }) {
            try await self.consume(length, keep: keepBody, into: &response.body)
            response.bodyLength = length
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            response.chunked = true
            while true {
                let sizeLine = try await self.readLine()
                guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                    throw ClientError(description: "bad chunk size \(sizeLine)")
                }
                if size == 0 {
                    while try await self.readLine() != "" {}
                    break
                }
                try await self.consume(size, keep: keepBody, into: &response.body)
                response.bodyLength += size
                _ = try await self.readLine()
            }
        } else {
            while try await self.fill() {}
            response.bodyLength = self.buffer.readableBytes
            response.body = self.buffer.readString(length: self.buffer.readableBytes) ?? ""
        }
        return response
    }

    /// Reads until the peer closes (bounded by the test's time limit); true once closed.
    func waitForClose() async throws -> Bool {
        while try await self.fill() {}
        return true
    }

    func fillOnce() async throws -> Bool {
        try await self.fill()
    }

    func takeUnparsed() -> String {
        self.buffer.readString(length: self.buffer.readableBytes) ?? ""
    }

    /// All bytes read so far and not parsed.
    var unparsed: String {
        String(buffer: self.buffer)
    }
}

extension RawClient {
    /// The next bytes as text (after any unparsed bytes).
    func readChunk() async throws -> String {
        if !self.unparsed.isEmpty {
            return self.takeUnparsed()
        }
        guard try await self.fillOnce() else { throw ClientError(description: "closed") }
        return self.takeUnparsed()
    }
}
