import NIOCore
import NIOPosix
import PorticoRouting
import Testing

@testable import PorticoHTTP

extension PorticoHTTPEngineTests {
    /// HTTP/2 seen frame by frame (h2c with prior knowledge and a raw client): flow control,
    /// GOAWAY and the connection's lifetime.
    @Suite("HTTP/2 frames")
    struct HTTP2FrameTests {
        private func configuration(
            _ upstream: TestUpstream,
            limits: HTTPLimits = HTTPLimits(),
            maxBodySize: Int? = nil
        ) -> HTTPEngineConfiguration {
            HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)],
                routes: TestSupport.routes([
                    (
                        Optional("a.example.com"), "/",
                        HTTPRoute(service: "default/a", pool: "a", maxBodySize: maxBodySize)
                    )
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])],
                limits: limits
            )
        }

        /// An engine serving ``configuration(_:limits:maxBodySize:)`` (with `routes` instead of
        /// its own when given) and the test upstream `a`, and a raw HTTP/2 client connected to
        /// its plain port (prefaces and SETTINGS exchanged; `settings` are the client's),
        /// closed after `body`.
        private func withClient(
            limits: HTTPLimits = HTTPLimits(),
            maxBodySize: Int? = nil,
            routes: RouteTable<HTTPRoute>? = nil,
            settings: [(UInt16, UInt32)] = [],
            _ body: (RawClient, HTTPEngine, TestUpstream) async throws -> Void
        ) async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream, limits: limits, maxBodySize: maxBodySize)
            if let routes { configuration.routes = routes }
            try await TestSupport.withEngine(configuration) { engine, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.startHTTP2(settings: settings)
                try await body(client, engine, upstream)
                await client.close()
            }
        }

        /// A client that grants no window beyond the initial 65,535 bytes gets that much; the
        /// rest waits in the upstream (memory stays flat) and flows once the window opens.
        @Test func downloadsWaitForTheClientsWindow() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let total = 32 * 1024 * 1024
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let before = TestSupport.residentBytes()
                let client = try await TestSupport.connect(ports[.http])
                try await client.startHTTP2()
                try await client.sendRequest(stream: 1, path: "/download?n=\(total)")
                // (Raw-client waits are bounded by the suite's time limit.)
                var received = 0
                var sawHeaders = false
                while received < 65535 {
                    let frame = try await client.readFrame()
                    if frame.type == RawFrame.headers { sawHeaders = true }
                    if frame.type == RawFrame.data { received += frame.payload.count }
                    #expect(frame.type != RawFrame.rstStream && frame.type != RawFrame.goAway)
                }
                #expect(sawHeaders)
                #expect(received == 65535)
                // Time for an unbounded proxy to read the whole body from the upstream.
                try await Task.sleep(nanoseconds: 1_000_000_000)
                let grown = TestSupport.residentBytes() - before
                #expect(grown < 16 * 1024 * 1024, "resident memory grew by \(grown) bytes")

                let more = UInt32(Int32.max) - 65535
                try await client.sendWindowUpdate(stream: 0, increment: more)
                try await client.sendWindowUpdate(stream: 1, increment: more)
                var ended = false
                while !ended {
                    let frame = try await client.readFrame()
                    if frame.type == RawFrame.data { received += frame.payload.count }
                    if frame.stream == 1 && frame.endsStream { ended = true }
                    if frame.type == RawFrame.rstStream || frame.type == RawFrame.goAway { break }
                }
                #expect(ended)
                #expect(received == total)
            }
        }

        /// Request bodies reach an HTTP/1.1 upstream framed, whatever the method: a GET's DATA
        /// is a chunked body there, not bytes the upstream reads as its next request; a
        /// bodiless request ended by an empty DATA frame stays bodiless; TRACE with content is
        /// refused.
        @Test func requestBodiesAreFramedForHTTP1Upstreams() async throws {
            try await self.withClient { client, _, upstream in
                /// Sends HEADERS (without END_STREAM) and one DATA frame ending the stream, in
                /// one write; returns the response's DATA as text and whether it ended normally.
                func exchange(
                    _ stream: UInt32,
                    method: String,
                    path: String,
                    body: String
                ) async throws -> (String, Bool) {
                    var frames = RawFrame.request(stream: stream, method: method, path: path, endStream: false)
                    var data = RawFrame.encode(
                        type: RawFrame.data,
                        flags: RawFrame.endStream,
                        stream: stream,
                        payload: Array(body.utf8)
                    )
                    frames.writeBuffer(&data)
                    try await client.send(frames)
                    var text: [UInt8] = []
                    while true {
                        let frame = try await client.readFrame()
                        guard frame.stream == stream else { continue }
                        if frame.type == RawFrame.data { text += frame.payload }
                        if frame.type == RawFrame.rstStream { return (String(decoding: text, as: UTF8.self), false) }
                        if frame.endsStream { return (String(decoding: text, as: UTF8.self), true) }
                    }
                }
                let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a.example.com\r\n\r\n"
                let get = try await exchange(1, method: "GET", path: "/count", body: smuggled)
                #expect(get.0 == "received \(smuggled.utf8.count)")
                #expect(get.1)

                let bodiless = try await exchange(3, method: "GET", path: "/plain", body: "")
                #expect(bodiless.1)
                #expect(bodiless.0.hasPrefix("upstream a GET /plain\n"), "\(bodiless.0)")
                #expect(!bodiless.0.contains("transfer-encoding"), "\(bodiless.0)")
                #expect(!bodiless.0.contains("content-length"), "\(bodiless.0)")

                let trace = try await exchange(5, method: "TRACE", path: "/", body: smuggled)
                #expect(trace.0 == "bad request: TRACE with content\n")

                // Nothing reached the upstream as a request of its own.
                let after = try await exchange(7, method: "GET", path: "/after", body: "")
                #expect(after.0.hasPrefix("upstream a GET /after\n"))
            }
        }

        /// A response that ends before its request (here a 413 for a declared length): the rest
        /// of a short body is read and dropped, so the client sees no reset; a long one is
        /// reset with NO_ERROR after the response.
        @Test func bodiesAfterAnEarlyResponseAreDroppedThenReset() async throws {
            try await self.withClient(maxBodySize: 1024) { client, _, upstream in
                func response(_ stream: UInt32) async throws -> (status: Bool, reset: UInt32?) {
                    var ended = false
                    while true {
                        let frame = try await client.readFrame()
                        guard frame.stream == stream else { continue }
                        if frame.type == RawFrame.rstStream { return (ended, RawFrame.uint32(frame.payload[0..<4])) }
                        if frame.endsStream { ended = true }
                        if ended && frame.type != RawFrame.rstStream { return (true, nil) }
                    }
                }
                try await client.send(
                    RawFrame.request(
                        stream: 1,
                        method: "POST",
                        path: "/count",
                        endStream: false,
                        fields: [("content-length", "2000")]
                    )
                )
                let short = try await response(1)
                #expect(short.status && short.reset == nil)
                try await client.sendFrame(
                    type: RawFrame.data,
                    flags: RawFrame.endStream,
                    stream: 1,
                    payload: Array(repeating: 0x61, count: 2000)
                )
                try await client.sendRequest(stream: 3, path: "/next")
                // Stream 1 ends without a reset: the next frame for any stream is stream 3's.
                let next = try await client.readFrame()
                #expect(next.stream == 3 && next.type == RawFrame.headers, "\(next.type) on \(next.stream)")
                _ = try await response(3)

                try await client.send(
                    RawFrame.request(
                        stream: 5,
                        method: "POST",
                        path: "/count",
                        endStream: false,
                        fields: [("content-length", "200000")]
                    )
                )
                #expect(try await response(5).reset == nil)
                var chunks = ByteBuffer()
                for _ in 0..<6 {
                    var chunk = RawFrame.encode(
                        type: RawFrame.data,
                        stream: 5,
                        payload: Array(repeating: 0x62, count: 16000)
                    )
                    chunks.writeBuffer(&chunk)
                }
                try await client.send(chunks)
                let reset = try await client.readFrame(ofType: RawFrame.rstStream)
                #expect(reset.stream == 5)
                #expect(RawFrame.uint32(reset.payload[0..<4]) == 0, "NO_ERROR")
            }
        }

        /// A stream that breaks a stream-level rule (DATA beyond its content-length) is reset;
        /// the connection and its other streams go on.
        @Test func aStreamErrorResetsOnlyThatStream() async throws {
            try await self.withClient { client, _, upstream in
                var frames = RawFrame.request(
                    stream: 1,
                    method: "POST",
                    path: "/count",
                    endStream: false,
                    fields: [("content-length", "5")]
                )
                var data = RawFrame.encode(
                    type: RawFrame.data,
                    flags: RawFrame.endStream,
                    stream: 1,
                    payload: Array("ten bytes!".utf8)
                )
                frames.writeBuffer(&data)
                try await client.send(frames)
                let reset = try await client.readFrame(ofType: RawFrame.rstStream)
                #expect(reset.stream == 1)
                try await client.sendRequest(stream: 3, path: "/after")
                var body: [UInt8] = []
                while true {
                    let frame = try await client.readFrame()
                    #expect(frame.type != RawFrame.goAway, "the connection ended")
                    if frame.type == RawFrame.goAway { break }
                    if frame.stream == 3 && frame.type == RawFrame.data { body += frame.payload }
                    if frame.stream == 3 && frame.endsStream { break }
                }
                #expect(String(decoding: body, as: UTF8.self).hasPrefix("upstream a GET /after\n"))
            }
        }

        /// Malformed requests (RFC 9113 8.1.1; Portico checks them, NIOHTTP2's validation is
        /// off): each stream is reset with PROTOCOL_ERROR and gets no response; a body that
        /// ends short of its length is not completed upstream; the connection goes on.
        @Test func malformedRequestsAreResetWithProtocolError() async throws {
            try await self.withClient { client, _, _ in
                // (name, request fields, DATA frames, trailers); the last frame ends the stream.
                let cases: [(String, [(String, String)], [String], [(String, String)]?)] = [
                    ("uppercase name", [("X-Upper", "1")], [], nil),
                    ("connection-specific field", [("connection", "close")], [], nil),
                    ("CR LF in a value", [("x", "a\r\nx-injected: 1")], [], nil),
                    ("te other than trailers", [("te", "gzip")], [], nil),
                    ("length but no body", [("content-length", "3")], [], nil),
                    ("body short of its length", [("content-length", "10")], ["short"], nil),
                    ("body beyond its length", [("content-length", "2")], ["long"], nil),
                    ("body beyond its length over two frames", [("content-length", "2")], ["ab", "cd"], nil),
                    ("trailers before the length is met", [("content-length", "5")], ["ab"], [("x-sum", "1")]),
                    ("pseudo-header field in trailers", [], ["ab"], [(":path", "/")]),
                    ("connection-specific field in trailers", [], ["ab"], [("connection", "close")]),
                ]
                var stream: UInt32 = 1
                for (name, fields, bodies, trailers) in cases {
                    var frames = RawFrame.request(
                        stream: stream,
                        method: "POST",
                        path: "/count",
                        endStream: bodies.isEmpty && trailers == nil,
                        fields: fields
                    )
                    for (index, body) in bodies.enumerated() {
                        let last = index == bodies.count - 1 && trailers == nil
                        var data = RawFrame.encode(
                            type: RawFrame.data,
                            flags: last ? RawFrame.endStream : 0,
                            stream: stream,
                            payload: Array(body.utf8)
                        )
                        frames.writeBuffer(&data)
                    }
                    if let trailers {
                        var block = RawFrame.encode(
                            type: RawFrame.headers,
                            flags: RawFrame.endHeaders | RawFrame.endStream,
                            stream: stream,
                            payload: RawHPACK.literals(trailers)
                        )
                        frames.writeBuffer(&block)
                    }
                    try await client.send(frames)
                    while true {
                        let frame = try await client.readFrame()
                        guard frame.stream == stream else { continue }
                        if frame.type == RawFrame.rstStream {
                            #expect(RawFrame.uint32(frame.payload[0..<4]) == 1, "\(name): PROTOCOL_ERROR")
                        } else {
                            Issue.record("\(name): a frame of type \(frame.type) instead of RST_STREAM")
                        }
                        break
                    }
                    stream += 2
                }
                try await client.sendRequest(stream: stream, path: "/after")
                var text: [UInt8] = []
                while true {
                    let frame = try await client.readFrame()
                    #expect(frame.type != RawFrame.goAway && frame.type != RawFrame.rstStream)
                    if frame.type == RawFrame.goAway || frame.type == RawFrame.rstStream { break }
                    if frame.stream == stream && frame.type == RawFrame.data { text += frame.payload }
                    if frame.stream == stream && frame.endsStream { break }
                }
                #expect(String(decoding: text, as: UTF8.self).hasPrefix("upstream a GET /after\n"))

                // A HEAD answered by Portico itself (no route: 404) carries no DATA.
                stream += 2
                try await client.sendRequest(stream: stream, method: "HEAD", path: "/", authority: "nowhere.example")
                while true {
                    let frame = try await client.readFrame()
                    guard frame.stream == stream else { continue }
                    #expect(frame.type == RawFrame.headers, "HEAD: a frame of type \(frame.type)")
                    if frame.type != RawFrame.headers || frame.endsStream { break }
                }
            }
        }

        /// A `limit-connections` slot is given back when a stream ends early (here a 413 that
        /// resets the stream), as when it ends normally.
        @Test func connectionLimitSlotsComeBackAfterEarlyEnds() async throws {
            let routes = TestSupport.routes([
                (
                    Optional("a.example.com"), "/",
                    HTTPRoute(
                        service: "default/a",
                        pool: "a",
                        maxBodySize: 10,
                        rateLimit: RateLimit(id: "default/a", connections: 1)
                    )
                )
            ])
            try await self.withClient(routes: routes) { client, _, upstream in
                for round in 0..<3 {
                    let tooLarge = UInt32(4 * round + 1)
                    try await client.send(
                        RawFrame.request(
                            stream: tooLarge,
                            method: "POST",
                            path: "/count",
                            endStream: false,
                            fields: [("content-length", "100")]
                        )
                    )
                    // Ends the body at once: the discarded stream ends without a reset.
                    try await client.sendFrame(
                        type: RawFrame.data,
                        flags: RawFrame.endStream,
                        stream: tooLarge,
                        payload: Array(repeating: 0x61, count: 100)
                    )
                    try await client.sendRequest(stream: tooLarge + 2, path: "/ok/\(round)")
                    var body: [UInt8] = []
                    while true {
                        let frame = try await client.readFrame()
                        if frame.stream == tooLarge + 2 && frame.type == RawFrame.data { body += frame.payload }
                        if frame.stream == tooLarge + 2 && frame.endsStream { break }
                    }
                    let text = String(decoding: body, as: UTF8.self)
                    #expect(text.hasPrefix("upstream a GET /ok/\(round)\n"), "round \(round): \(text)")
                }
            }
        }

        /// A client that stops sending after an early response: its stream is reset after the
        /// discard time rather than kept open.
        @Test func abandonedUploadsAreResetAfterTheDiscardTime() async throws {
            try await self.withClient(maxBodySize: 10) { client, _, upstream in
                try await client.send(
                    RawFrame.request(
                        stream: 1,
                        method: "POST",
                        path: "/count",
                        endStream: false,
                        fields: [("content-length", "100")]
                    )
                )
                // The 413, then (about two seconds later) RST_STREAM NO_ERROR.
                var ended = false
                while true {
                    let frame = try await client.readFrame()
                    if frame.stream == 1 && frame.endsStream { ended = true }
                    if frame.type == RawFrame.rstStream {
                        #expect(ended && frame.stream == 1)
                        #expect(RawFrame.uint32(frame.payload[0..<4]) == 0, "NO_ERROR")
                        break
                    }
                }
            }
        }

        /// Shutting down while a finished response still waits for the client's window: the
        /// connection stays until that response has left, then closes.
        @Test func shutdownWaitsForResponsesHeldByFlowControl() async throws {
            // SETTINGS_INITIAL_WINDOW_SIZE 16: the response body leaves 16 bytes at a time.
            try await self.withClient(settings: [(0x4, 16)]) { client, engine, _ in
                try await client.sendRequest(stream: 1, path: "/held")
                var body: [UInt8] = []
                while body.count < 16 {
                    let frame = try await client.readFrame()
                    if frame.stream == 1 && frame.type == RawFrame.data { body += frame.payload }
                }
                let shutdown = Task { await engine.shutdown(gracePeriod: .seconds(30)) }
                _ = try await client.readFrame(ofType: RawFrame.goAway)
                try await Task.sleep(nanoseconds: 200_000_000)
                try await client.sendWindowUpdate(stream: 1, increment: 1 << 20)
                var ended = false
                while !ended {
                    let frame = try await client.readFrame()
                    if frame.stream == 1 && frame.type == RawFrame.data { body += frame.payload }
                    if frame.stream == 1 && frame.endsStream { ended = true }
                }
                #expect(String(decoding: body, as: UTF8.self).hasPrefix("upstream a GET /held\n"))
                #expect(try await client.waitForClose())
                await shutdown.value
            }
        }

        /// Upstream connections of a burst of exchanges stay for the next burst even above the
        /// idle limit, and are trimmed back to it after the burst grace.
        @Test func burstsReuseUpstreamConnectionsAboveTheIdleLimit() async throws {
            let limits = HTTPLimits(maxIdleUpstreamConnectionsPerEndpoint: 2)
            try await self.withClient(limits: limits) { client, _, upstream in
                var nextStream: UInt32 = 1
                // Eight requests in one write: they start in one read burst, each needing a connection.
                func burst() async throws {
                    var frames = ByteBuffer()
                    var open = Set<UInt32>()
                    for index in 0..<8 {
                        var frame = RawFrame.request(stream: nextStream, path: "/burst/\(index)")
                        frames.writeBuffer(&frame)
                        open.insert(nextStream)
                        nextStream += 2
                    }
                    try await client.send(frames)
                    while !open.isEmpty {
                        let frame = try await client.readFrame()
                        #expect(frame.type != RawFrame.rstStream && frame.type != RawFrame.goAway)
                        if frame.endsStream { open.remove(frame.stream) }
                    }
                }
                try await burst()
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 8)
                try await burst()
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 8, "the second burst reused all eight")
                // The sweeper (every second) closes the six above the limit once idle for a second.
                try await Task.sleep(nanoseconds: 2_500_000_000)
                try await burst()
                #expect(upstream.connectionsAccepted.load(ordering: .relaxed) == 14, "two kept, six opened")
            }
        }

        /// The server advertises its stream limit; a client that opens more streams than that
        /// loses the connection (NIO treats it as a connection error: GOAWAY PROTOCOL_ERROR;
        /// RFC 9113 section 5.1.2 asks for at least a stream error).
        @Test func streamsBeyondTheLimitEndTheConnection() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let limits = HTTPLimits(maxConcurrentStreams: 4)
            try await TestSupport.withEngine(self.configuration(upstream, limits: limits)) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                let settings = try await client.startHTTP2()
                #expect(settings[0x3] == 4, "SETTINGS_MAX_CONCURRENT_STREAMS")
                var frames = ByteBuffer()
                for stream in stride(from: UInt32(1), through: 9, by: 2) {
                    var frame = RawFrame.request(stream: stream, path: "/slow")  // never answered
                    frames.writeBuffer(&frame)
                }
                try await client.send(frames)
                let goAway = try await client.readFrame(ofType: RawFrame.goAway)
                #expect(goAway.goAwayFields?.errorCode == 0x1, "PROTOCOL_ERROR")
                #expect(try await client.waitForClose())
            }
        }

        /// Opening and resetting streams in a loop (CVE-2023-44487, "rapid reset") ends the
        /// connection with GOAWAY ENHANCE_YOUR_CALM.
        @Test func rapidResetEndsTheConnection() async throws {
            try await self.withClient { client, _, upstream in
                var frames = ByteBuffer()
                for index in 0..<400 {
                    let stream = UInt32(2 * index + 1)
                    var request = RawFrame.request(stream: stream, path: "/r")
                    var reset = RawFrame.encode(type: RawFrame.rstStream, stream: stream, payload: RawFrame.bytes(8))
                    frames.writeBuffer(&request)
                    frames.writeBuffer(&reset)
                }
                try await client.send(frames)
                let goAway = try await client.readFrame(ofType: RawFrame.goAway)
                #expect(goAway.goAwayFields?.errorCode == 0xb, "ENHANCE_YOUR_CALM")
                #expect(try await client.waitForClose())
            }
        }

        /// A header block sent as an endless run of CONTINUATION frames (CVE-2024-27316,
        /// "CONTINUATION flood") ends the connection instead of being buffered.
        @Test func aFloodOfContinuationFramesEndsTheConnection() async throws {
            try await self.withClient { client, _, _ in
                var frames = RawFrame.encode(
                    type: RawFrame.headers,
                    stream: 1,
                    payload: RawHPACK.literals([(":method", "GET")])
                )
                for _ in 0..<64 {
                    var more = RawFrame.encode(type: 0x9, stream: 1, payload: RawHPACK.literals([("x-filler", "1")]))
                    frames.writeBuffer(&more)
                }
                try await client.send(frames)
                let goAway = try await client.readFrame(ofType: RawFrame.goAway)
                #expect(goAway.goAwayFields.map { $0.errorCode != 0 } == true, "an error code")
                #expect(try await client.waitForClose())
            }
        }

        /// Resets the client provokes (here: malformed requests, each reset with PROTOCOL_ERROR)
        /// count as its own (CVE-2025-8671, "MadeYouReset"): past the limit the lane ends the
        /// connection with ENHANCE_YOUR_CALM. (The lane's rule; NIOHTTP2 has its own.)
        @Test func provokedResetsEndTheConnectionOnTheLane() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream), fastLane: true) { engine, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.startHTTP2()
                var frames = ByteBuffer()
                for index in 0..<300 {
                    var request = RawFrame.request(
                        stream: UInt32(2 * index + 1),
                        path: "/r",
                        fields: [("X-Upper", "1")]
                    )
                    frames.writeBuffer(&request)
                }
                try await client.send(frames)
                var resets = 0
                while true {
                    let frame = try await client.readFrame()
                    if frame.type == RawFrame.rstStream { resets += 1 }
                    if frame.type == RawFrame.goAway {
                        #expect(frame.goAwayFields?.errorCode == 0xb, "ENHANCE_YOUR_CALM")
                        break
                    }
                }
                #expect(resets >= 200 && resets <= 201, "the limit's worth of resets first: \(resets)")
                #expect(try await client.waitForClose())
                #expect(engine.fastLaneStatistics.map(\.http2Connections).reduce(0, +) == 1)
            }
        }

        /// Frames of every type with random flags, stream ids and payloads (some of them
        /// request blocks), after a valid preface: whatever each connection gets, the process
        /// serves the next client normally.
        @Test func randomFramesNeverStopTheServer() async throws {
            try await self.withClient { client, engine, _ in
                let port = engine.boundListeners.first?.1.port
                var generator = SeededGenerator(seed: 0x5eed)
                let block = RawHPACK.literals([
                    (":method", "GET"), (":scheme", "http"), (":path", "/f"), (":authority", "a.example.com"),
                ])
                for _ in 0..<200 {
                    let fuzzed = try await TestSupport.connect(port)
                    var bytes = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                    var settings = RawFrame.encode(type: RawFrame.settings, stream: 0)
                    bytes.writeBuffer(&settings)
                    for _ in 0..<Int.random(in: 1...30, using: &generator) {
                        let type = [UInt8](0...9).randomElement(using: &generator)!
                        let stream = [UInt32(0), 1, 3, 5, UInt32.random(in: 0...0x7fff_ffff, using: &generator)]
                            .randomElement(using: &generator)!
                        var payload: [UInt8]
                        switch Int.random(in: 0..<10, using: &generator) {
                        case 0..<3: payload = block
                        case 3: payload = [UInt8.random(in: 0...255, using: &generator)] + block
                        default:
                            let count = [0, 1, 4, 5, 8, 9, 40, 300].randomElement(using: &generator)!
                            payload = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
                        }
                        var frame = RawFrame.encode(
                            type: type,
                            flags: UInt8.random(in: 0...255, using: &generator),
                            stream: stream,
                            payload: payload
                        )
                        bytes.writeBuffer(&frame)
                    }
                    try await fuzzed.send(bytes)
                    await fuzzed.close()
                }
                // The connection opened before all this still works, and so does a new one.
                try await client.sendRequest(stream: 1, path: "/after")
                let old = try await client.readBody(stream: 1)
                #expect(old.interruptedBy == nil && old.text.hasPrefix("upstream a GET /after\n"), "\(old.text)")
                let fresh = try await TestSupport.connect(port)
                try await fresh.startHTTP2()
                try await fresh.sendRequest(stream: 1, path: "/fresh")
                let new = try await fresh.readBody(stream: 1)
                #expect(new.interruptedBy == nil && new.text.hasPrefix("upstream a GET /fresh\n"), "\(new.text)")
                await fresh.close()
            }
        }

        /// A stream's upstream timeout ends it with the 504 answer (checked by the connection
        /// every second), and the connection goes on serving.
        @Test func upstreamTimeoutsAnswerStreamsWith504() async throws {
            let routes = TestSupport.routes([
                (
                    Optional("a.example.com"), "/",
                    HTTPRoute(service: "default/a", pool: "a", readTimeout: .milliseconds(300))
                )
            ])
            try await self.withClient(routes: routes) { client, _, upstream in
                try await client.sendRequest(stream: 1, path: "/slow")
                try await client.sendRequest(stream: 3, path: "/fast")
                var bodies: [UInt32: [UInt8]] = [:]
                var ended: Set<UInt32> = []
                while ended.count < 2 {
                    let frame = try await client.readFrame()
                    #expect(frame.type != RawFrame.rstStream && frame.type != RawFrame.goAway)
                    if frame.type == RawFrame.data { bodies[frame.stream, default: []] += frame.payload }
                    if frame.endsStream { ended.insert(frame.stream) }
                }
                let timedOut = String(decoding: bodies[1] ?? [], as: UTF8.self)
                #expect(timedOut == "upstream timed out for service \"default/a\" (proxy-read-timeout)\n")
                #expect(String(decoding: bodies[3] ?? [], as: UTF8.self).hasPrefix("upstream a GET /fast\n"))
            }
        }

        /// An idle connection gets GOAWAY (NO_ERROR) after the idle timeout, then is closed.
        @Test func idleConnectionsEndWithGoAway() async throws {
            let limits = HTTPLimits(idleTimeout: .milliseconds(300))
            try await self.withClient(limits: limits) { client, _, upstream in
                try await client.sendRequest(stream: 1, path: "/first")
                var ended = false
                var goAway: RawFrame?
                while goAway == nil {
                    let frame = try await client.readFrame()
                    if frame.stream == 1 && frame.endsStream { ended = true }
                    if frame.type == RawFrame.goAway { goAway = frame }
                }
                #expect(ended, "the request's response ended before the GOAWAY")
                #expect(goAway?.goAwayFields?.lastStream == 1)
                #expect(goAway?.goAwayFields?.errorCode == 0)
                #expect(try await client.waitForClose())
            }
        }

        /// A large response to a request the engine serves for the lane (a body without a
        /// length: chunked upstream) flows through the client's window as the client opens it,
        /// 32 KiB at a time as most clients do, to its end.
        @Test func aRelayedDownloadFollowsTheClientsWindow() async throws {
            try await self.withClient { client, _, _ in
                let total = 1_000_000
                try await client.sendRequest(stream: 1, method: "POST", path: "/download?n=\(total)", endStream: false)
                try await client.sendFrame(type: RawFrame.data, flags: RawFrame.endStream, stream: 1, payload: [0x61])
                var received = 0
                var unacknowledged = 0
                var ended = false
                while !ended {
                    let frame = try await client.readFrame()
                    #expect(frame.type != RawFrame.rstStream && frame.type != RawFrame.goAway)
                    if frame.type == RawFrame.rstStream || frame.type == RawFrame.goAway { break }
                    guard frame.stream == 1 else { continue }
                    if frame.type == RawFrame.data {
                        received += frame.payload.count
                        unacknowledged += frame.payload.count
                        if unacknowledged >= 32768 {
                            try await client.sendWindowUpdate(stream: 0, increment: UInt32(unacknowledged))
                            try await client.sendWindowUpdate(stream: 1, increment: UInt32(unacknowledged))
                            unacknowledged = 0
                        }
                    }
                    ended = frame.endsStream
                }
                #expect(ended)
                #expect(received == total)
            }
        }

        /// An HTTP/1.0 upstream's response without a length (its end is the close) ends its
        /// stream normally: DATA, then END_STREAM, no reset.
        @Test func aResponseDelimitedByTheUpstreamsCloseEndsItsStream() async throws {
            let upstream = try await ServerBootstrap(group: TestSupport.group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UntilCloseResponder())
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            defer { upstream.close(promise: nil) }
            let routes = TestSupport.routes([
                (Optional("a.example.com"), "/", HTTPRoute(service: "default/old", pool: "old"))
            ])
            var configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)],
                routes: routes,
                pools: [
                    "old": UpstreamPool(endpoints: [
                        UpstreamEndpoint(host: "127.0.0.1", port: upstream.localAddress!.port!)
                    ])
                ]
            )
            configuration.limits = HTTPLimits()
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.startHTTP2()
                for stream in [UInt32(1), 3] {
                    try await client.sendRequest(stream: stream, path: "/old/\(stream)")
                    let (text, interruption) = try await client.readBody(stream: stream)
                    #expect(interruption == nil, "\(interruption.map { "frame type \($0.type)" } ?? "")")
                    #expect(text == "an old server's answer, until the close")
                }
                await client.close()
            }
        }

        /// Shutting down: GOAWAY naming the last stream taken; that stream still completes,
        /// then the connection closes without waiting for the grace period.
        @Test func shutdownLetsOpenStreamsFinish() async throws {
            try await self.withClient { client, engine, upstream in
                try await client.sendRequest(stream: 1, method: "POST", path: "/count", endStream: false)
                try await client.sendFrame(type: RawFrame.data, stream: 1, payload: Array("part one,".utf8))
                // The stream is open (its body half sent) when the shutdown starts.
                try await Task.sleep(nanoseconds: 100_000_000)
                let shutdown = Task { await engine.shutdown(gracePeriod: .seconds(30)) }
                let goAway = try await client.readFrame(ofType: RawFrame.goAway)
                #expect(goAway.goAwayFields?.lastStream == 1)
                #expect(goAway.goAwayFields?.errorCode == 0)
                try await client.sendFrame(
                    type: RawFrame.data,
                    flags: RawFrame.endStream,
                    stream: 1,
                    payload: Array("part two".utf8)
                )
                var body: [UInt8] = []
                while true {
                    let frame = try await client.readFrame()
                    if frame.type == RawFrame.data && frame.stream == 1 { body += frame.payload }
                    if frame.stream == 1 && frame.endsStream { break }
                    if frame.type == RawFrame.rstStream {
                        body = Array("reset".utf8)
                        break
                    }
                }
                #expect(String(decoding: body, as: UTF8.self) == "received 17")
                // Closed once the stream ended, long before the 30-second grace period.
                #expect(try await client.waitForClose())
                await shutdown.value
            }
        }
    }
}

/// An upstream that answers each connection's first request as an HTTP/1.0 server without a
/// length would: the body ends with the connection.
private final class UntilCloseResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        guard bytes.readableBytesView.contains(UInt8(ascii: "\n")) else { return }
        let answer = "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nan old server's answer, until the close"
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// A deterministic random source (SplitMix64), so a failing run can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9e37_79b9_7f4a_7c15
        var value = self.state
        value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
        value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
        return value ^ (value >> 31)
    }
}
