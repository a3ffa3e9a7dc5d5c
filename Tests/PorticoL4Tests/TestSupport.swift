import Logging
import MetricsTestKit
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PorticoL4
import Testing

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum TestSupport {
    static var group: MultiThreadedEventLoopGroup { .singleton }

    static var logger: Logger {
        var logger = Logger(label: "portico-l4-tests")
        logger.logLevel = .critical
        return logger
    }

    /// An engine with its own metrics, applied with `configuration`.
    static func engine(_ configuration: L4Configuration) async throws -> (L4Engine, TestMetrics) {
        let metrics = TestMetrics()
        let engine = L4Engine(group: Self.group, logger: Self.logger, metricsFactory: metrics)
        try await engine.apply(configuration)
        return (engine, metrics)
    }

    static func bound(_ engine: L4Engine, _ key: L4ListenerKey) throws -> SocketAddress {
        try #require(engine.boundAddresses[key], "listener \(key) is not bound")
    }

    static func endpoint(_ address: SocketAddress) -> L4Endpoint {
        L4Endpoint(host: address.ipAddress!, port: address.port!)
    }

    /// A local port with nothing listening (bound, then closed).
    static func deadEndpoint() async throws -> L4Endpoint {
        let channel = try await ServerBootstrap(group: Self.group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return L4Endpoint(host: "127.0.0.1", port: port)
    }

    /// A local port whose SYNs go unanswered: a listener with a full accept queue (backlog 0,
    /// one connection waiting, never accepted). Close the returned channels afterwards.
    static func unresponsiveEndpoint() async throws -> (L4Endpoint, [any Channel]) {
        let listener = try await ServerBootstrap(group: Self.group)
            .serverChannelOption(.backlog, value: 0)
            .serverChannelOption(ChannelOptions.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0).get()
        let filler = try await ClientBootstrap(group: Self.group).connect(to: listener.localAddress!).get()
        return (Self.endpoint(listener.localAddress!), [filler, listener])
    }

    /// Polls `condition` until it holds or `timeout` passes; returns whether it held.
    static func eventually(
        _ timeout: Duration = .seconds(5),
        _ condition: () throws -> Bool
    ) async rethrows -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if try condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return try condition()
    }

    static func counter(_ metrics: TestMetrics, _ label: String) -> Int64 {
        metrics.counters(label: label).reduce(0) { $0 + $1.totalValue }
    }

    static func meter(_ metrics: TestMetrics, _ label: String) -> Double {
        metrics.meters(label: label).reduce(0) { $0 + ($1.lastValue ?? 0) }
    }
}

// MARK: TCP test upstream

/// What a test upstream saw on one connection.
final class UpstreamConnection: Sendable {
    let channel: any Channel
    private let state = NIOLockedValueBox<(prefix: [UInt8], count: Int, mismatches: Int, sawEOF: Bool)>(
        ([], 0, 0, false)
    )
    /// Bytes kept for inspection (the rest is only counted and pattern-checked).
    static let keptBytes = 1 << 16

    init(channel: any Channel) {
        self.channel = channel
    }

    var received: [UInt8] { self.state.withLockedValue { $0.prefix } }
    var receivedText: String { String(decoding: self.received, as: UTF8.self) }
    var count: Int { self.state.withLockedValue { $0.count } }
    var sawEOF: Bool { self.state.withLockedValue { $0.sawEOF } }
    /// Bytes that broke the `offset % 251` pattern (for bulk transfers).
    var patternMismatches: Int { self.state.withLockedValue { $0.mismatches } }

    func record(_ buffer: ByteBuffer, checkPattern: Bool) {
        self.state.withLockedValue { state in
            var mismatches = 0
            if checkPattern {
                var offset = state.count
                buffer.withUnsafeReadableBytes { bytes in
                    for byte in bytes {
                        if byte != UInt8(offset % 251) { mismatches += 1 }
                        offset += 1
                    }
                }
            }
            state.mismatches += mismatches
            if state.prefix.count < Self.keptBytes {
                state.prefix += buffer.readableBytesView.prefix(Self.keptBytes - state.prefix.count)
            }
            state.count += buffer.readableBytes
        }
    }

    func recordEOF() {
        self.state.withLockedValue { $0.sawEOF = true }
    }
}

/// A TCP upstream on loopback: echoes (optionally after a greeting), answers EOF with
/// `EOF\n` and then closes, and records everything it receives.
final class TestTCPServer: Sendable {
    struct Options: Sendable {
        var greeting: String? = nil
        var echo = true
        /// Do not read until ``TestTCPServer/resumeReading()`` (a stalled receiver).
        var paused = false
        var checkPattern = false
    }

    let channel: any Channel
    private let connectionsBox: NIOLockedValueBox<[UpstreamConnection]>
    private let paused: NIOLockedValueBox<Bool>

    private init(
        channel: any Channel,
        connections: NIOLockedValueBox<[UpstreamConnection]>,
        paused: NIOLockedValueBox<Bool>
    ) {
        self.channel = channel
        self.connectionsBox = connections
        self.paused = paused
    }

    var address: SocketAddress { self.channel.localAddress! }
    var endpoint: L4Endpoint { TestSupport.endpoint(self.address) }
    var connections: [UpstreamConnection] { self.connectionsBox.withLockedValue { $0 } }

    static func start(host: String = "127.0.0.1", _ options: Options = Options()) async throws -> TestTCPServer {
        let connections = NIOLockedValueBox<[UpstreamConnection]>([])
        let paused = NIOLockedValueBox(options.paused)
        let channel = try await ServerBootstrap(group: TestSupport.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.autoRead, value: !options.paused)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = UpstreamConnection(channel: channel)
                    connections.withLockedValue { $0.append(connection) }
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamHandler(connection: connection, options: options)
                    )
                    if !paused.withLockedValue({ $0 }) {
                        _ = channel.setOption(ChannelOptions.autoRead, value: true)
                    }
                }
            }
            .bind(host: host, port: 0).get()
        return TestTCPServer(channel: channel, connections: connections, paused: paused)
    }

    func resumeReading() {
        self.paused.withLockedValue { $0 = false }
        for connection in self.connections {
            _ = connection.channel.setOption(ChannelOptions.autoRead, value: true)
        }
    }

    func connection(_ index: Int) async throws -> UpstreamConnection {
        guard await TestSupport.eventually(.seconds(5), { self.connections.count > index }) else {
            throw TestFailure("upstream connection \(index) never arrived (\(self.connections.count) so far)")
        }
        return self.connections[index]
    }

    func stop() async {
        try? await self.channel.close()
        for connection in self.connections {
            try? await connection.channel.close()
        }
    }
}

private final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let connection: UpstreamConnection
    let options: TestTCPServer.Options

    init(connection: UpstreamConnection, options: TestTCPServer.Options) {
        self.connection = connection
        self.options = options
    }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting = self.options.greeting {
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.connection.record(buffer, checkPattern: self.options.checkPattern)
        if self.options.echo {
            context.write(data, promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.connection.recordEOF()
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "EOF\n")))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

// MARK: TCP test client

/// A client that writes exact bytes, half-closes, and collects what it reads.
final class TestTCPClient: Sendable {
    let channel: any Channel
    private let state: NIOLockedValueBox<(received: ByteBuffer, ended: Bool)>

    private init(channel: any Channel, state: NIOLockedValueBox<(received: ByteBuffer, ended: Bool)>) {
        self.channel = channel
        self.state = state
    }

    deinit {
        self.channel.close(promise: nil)
    }

    static func connect(to address: SocketAddress) async throws -> TestTCPClient {
        let state = NIOLockedValueBox<(received: ByteBuffer, ended: Bool)>((ByteBuffer(), false))
        let channel = try await ClientBootstrap(group: TestSupport.group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ClientRecorder(state: state))
                }
            }
            .connect(to: address).get()
        return TestTCPClient(channel: channel, state: state)
    }

    var localAddress: SocketAddress { self.channel.localAddress! }
    /// The peer ended the stream (EOF, reset or close).
    var sawEnd: Bool { self.state.withLockedValue { $0.ended } }
    var receivedText: String { self.state.withLockedValue { String(buffer: $0.received) } }

    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Shuts the write side (the peer reads EOF); reading goes on.
    func shutdownWrite() async throws {
        try await self.channel.close(mode: .output)
    }

    /// Waits until `count` bytes in total arrived, the stream ended, or `timeout` passed.
    @discardableResult
    func read(atLeast count: Int, timeout: Duration = .seconds(5)) async -> String {
        _ = await TestSupport.eventually(timeout) {
            self.state.withLockedValue { $0.ended || $0.received.readableBytes >= count }
        }
        return self.receivedText
    }

    /// Waits until the peer ends the stream (or `timeout`); returns everything received.
    @discardableResult
    func readToEnd(timeout: Duration = .seconds(5)) async -> String {
        await self.read(atLeast: .max, timeout: timeout)
    }

    func close() async {
        try? await self.channel.close()
    }
}

private final class ClientRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let state: NIOLockedValueBox<(received: ByteBuffer, ended: Bool)>

    init(state: NIOLockedValueBox<(received: ByteBuffer, ended: Bool)>) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        _ = self.state.withLockedValue { $0.received.writeBuffer(&buffer) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.state.withLockedValue { $0.ended = true }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state.withLockedValue { $0.ended = true }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

// MARK: UDP

/// A UDP socket on loopback that records what it receives; as an upstream it echoes.
final class TestUDPSocket: Sendable {
    let channel: any Channel
    private let box: NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>

    private init(channel: any Channel, box: NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>) {
        self.channel = channel
        self.box = box
    }

    static func start(host: String = "127.0.0.1", echo: Bool) async throws -> TestUDPSocket {
        let box = NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>([])
        let channel = try await DatagramBootstrap(group: TestSupport.group)
            .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
            // Any datagram whole, up to the largest IPv4 payload.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramRecorder(box: box, echo: echo))
                }
            }
            .bind(host: host, port: 0).get()
        return TestUDPSocket(channel: channel, box: box)
    }

    var address: SocketAddress { self.channel.localAddress! }
    var endpoint: L4Endpoint { TestSupport.endpoint(self.address) }
    var received: [AddressedEnvelope<ByteBuffer>] { self.box.withLockedValue { $0 } }
    var receivedTexts: [String] { self.received.map { String(buffer: $0.data) } }

    func send(_ text: String, to address: SocketAddress) async throws {
        try await self.channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(string: text)))
    }

    func stop() async {
        try? await self.channel.close()
    }
}

private final class DatagramRecorder: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let box: NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>
    let echo: Bool

    init(box: NIOLockedValueBox<[AddressedEnvelope<ByteBuffer>]>, echo: Bool) {
        self.box = box
        self.echo = echo
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        self.box.withLockedValue { $0.append(envelope) }
        if self.echo {
            context.write(
                self.wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: envelope.data)),
                promise: nil
            )
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}
