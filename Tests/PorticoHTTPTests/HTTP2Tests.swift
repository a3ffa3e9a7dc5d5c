import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    @Suite("HTTP/2 over TLS")
    struct HTTP2Tests {
        struct Answer: Sendable {
            var status: Int
            var headers: HTTPHeaders
            var body: String
            var trailers: HTTPHeaders?
        }

        /// What each concurrent stream got to, for the failure message of a bounded wait.
        final class StreamProgress: Sendable {
            private let states = NIOLockedValueBox<[Int: String]>([:])

            func record(_ index: Int?, _ state: String) {
                guard let index else { return }
                self.states.withLockedValue { $0[index] = state }
            }

            var summary: String {
                self.states.withLockedValue { states in
                    states.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
                }
            }
        }

        /// The configuration of the tests: one TLS listener, every request to `upstream`.
        private func configuration(_ upstream: TestUpstream) -> HTTPEngineConfiguration {
            HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)],
                defaultCertificate: TLSCertificate(
                    serverNames: [],
                    certificateChainPEM: TestCertificates.defaultCertificate,
                    privateKeyPEM: TestCertificates.defaultKey
                ),
                routes: TestSupport.routes([
                    (Optional("a.example.com"), "/", HTTPRoute(service: "default/a", pool: "a", maxBodySize: nil))
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
        }

        /// An HTTP/2 client connection: TLS with ALPN h2, one stream per request.
        ///
        /// The whole pipeline is set up in the channel initializer, before the TLS handshake can
        /// finish: the server sends its SETTINGS right after the handshake, and a handler added
        /// once `connect` returned can be too late (on a busy machine the awaiting task resumes
        /// after those bytes reached the pipeline's tail and were dropped; the client then
        /// rejects the server's next frames as a missing preface and its streams wait forever).
        private func connectH2(
            _ port: Int?,
            tls useTLS: Bool = true
        ) async throws -> (any Channel, NIOHTTP2Handler.AsyncStreamMultiplexer<Void>) {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            tls.applicationProtocols = ["h2"]
            let context = try NIOSSLContext(configuration: tls)
            return try await ClientBootstrap(group: TestSupport.group)
                .connect(host: "127.0.0.1", port: port!) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let operations = channel.pipeline.syncOperations
                        if useTLS {
                            try operations.addHandler(
                                NIOSSLClientHandler(context: context, serverHostname: "a.example.com")
                            )
                        }
                        let multiplexer = try operations.configureAsyncHTTP2Pipeline(mode: .client) { stream in
                            stream.eventLoop.makeSucceededVoidFuture()
                        }
                        return (channel, multiplexer)
                    }
                }
        }

        private func request(
            _ multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>,
            method: HTTPMethod = .GET,
            path: String,
            host: String = "a.example.com",
            body: String? = nil,
            extraHeaders: [(String, String)] = [],
            progress: StreamProgress? = nil,
            index: Int? = nil
        ) async throws -> Answer {
            progress?.record(index, "opening")
            let stream = try await multiplexer.openStream { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .https)
                    )
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
            progress?.record(index, "sending")
            return try await stream.executeThenClose { inbound, outbound in
                var headers = HTTPHeaders()
                headers.add(name: "host", value: host)
                if let body { headers.add(name: "content-length", value: String(body.utf8.count)) }
                headers.add(contentsOf: extraHeaders)
                try await outbound.write(
                    .head(HTTPRequestHead(version: .http2, method: method, uri: path, headers: headers))
                )
                if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
                try await outbound.write(.end(nil))
                progress?.record(index, "sent, awaiting the response")
                var answer = Answer(status: 0, headers: [:], body: "")
                for try await part in inbound {
                    switch part {
                    case .head(let head):
                        progress?.record(index, "got the response head")
                        answer.status = Int(head.status.code)
                        answer.headers = head.headers
                    case .body(let buffer):
                        answer.body += String(buffer: buffer)
                    case .end(let trailers):
                        progress?.record(index, "done")
                        answer.trailers = trailers
                        return answer
                    }
                }
                progress?.record(index, "stream ended without a response end")
                return answer
            }
        }

        /// `request`, failing within `seconds` (closing the connection) instead of hanging.
        private func boundedRequest(
            _ channel: any Channel,
            _ multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>,
            path: String,
            seconds: Double = 10
        ) async throws -> Answer {
            try await TestSupport.withTimeout(seconds: seconds, "HTTP/2 request GET \(path)", closing: channel) {
                try await self.request(multiplexer, path: path)
            }
        }

        @Test func streamsAreProxiedAsHTTP1Requests() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let (channel, multiplexer) = try await TestSupport.withTimeout(
                    seconds: 10,
                    "HTTP/2 connection to the engine"
                ) {
                    try await self.connectH2(ports[.https])
                }
                let progress = StreamProgress()
                let answers = try await TestSupport.withTimeout(
                    seconds: 10,
                    "20 concurrent HTTP/2 streams; per stream: \(progress.summary)",
                    closing: channel
                ) {
                    try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
                        for index in 0..<20 {
                            group.addTask {
                                if index % 2 == 0 {
                                    let answer = try await self.request(
                                        multiplexer,
                                        path: "/get/\(index)",
                                        progress: progress,
                                        index: index
                                    )
                                    return (index, answer)
                                }
                                let answer = try await self.request(
                                    multiplexer,
                                    method: .POST,
                                    path: "/count",
                                    body: "body\(index)",
                                    progress: progress,
                                    index: index
                                )
                                return (index, answer)
                            }
                        }
                        var result: [Int: Answer] = [:]
                        for try await (index, answer) in group { result[index] = answer }
                        return result
                    }
                }
                #expect(answers.count == 20)
                for (index, answer) in answers {
                    #expect(answer.status == 200)
                    if index % 2 == 0 {
                        #expect(answer.body.hasPrefix("upstream a GET /get/\(index)\n"))
                        #expect(answer.body.contains("\nx-forwarded-proto: https\n"))
                        #expect(answer.body.contains("\nhost: a.example.com\n"))
                    } else {
                        #expect(answer.body == "received \("body\(index)".utf8.count)")
                    }
                }
                let chunked = try await self.boundedRequest(channel, multiplexer, path: "/chunked")
                #expect(chunked.body == "one,two,three")
                let missing = try await self.boundedRequest(channel, multiplexer, path: "/nowhere")
                #expect(missing.status == 200)
                try await channel.close()
            }
        }

        /// backend-protocol GRPC (h2c prior knowledge) and GRPCS (TLS, ALPN h2): gRPC-shaped
        /// requests reach an HTTP/2 upstream with `te: trailers`, and its trailers come back.
        @Test(arguments: [false, true]) func grpcUpstreamsSpeakHTTP2BothWays(overTLS: Bool) async throws {
            var serverTLS: NIOSSLContext?
            if overTLS {
                var tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMBytes(
                        Array(TestCertificates.defaultCertificate.utf8)
                    )
                    .map { .certificate($0) },
                    privateKey: .privateKey(
                        try NIOSSLPrivateKey(bytes: Array(TestCertificates.defaultKey.utf8), format: .pem)
                    )
                )
                tls.applicationProtocols = ["h2"]
                serverTLS = try NIOSSLContext(configuration: tls)
            }
            let upstream = try await HTTP2TestUpstream.start(group: TestSupport.group, tls: serverTLS)
            defer { Task { await upstream.stop() } }
            var configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)],
                defaultCertificate: TLSCertificate(
                    serverNames: [],
                    certificateChainPEM: TestCertificates.defaultCertificate,
                    privateKeyPEM: TestCertificates.defaultKey
                ),
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/grpc", pool: "grpc"))]),
                pools: [
                    "grpc": UpstreamPool(
                        endpoints: [UpstreamEndpoint(host: "127.0.0.1", port: upstream.port)],
                        tls: overTLS ? UpstreamTLS() : nil,
                        http2: true
                    )
                ]
            )
            configuration.listeners.append(HTTPListener(address: "127.0.0.1", port: 0, kind: .http))
            try await TestSupport.withEngine(configuration) { _, ports in
                let (channel, multiplexer) = try await TestSupport.withTimeout(seconds: 10, "HTTP/2 connection") {
                    try await self.connectH2(ports[.https])
                }
                let answers = try await TestSupport.withTimeout(seconds: 10, "gRPC calls", closing: channel) {
                    try await withThrowingTaskGroup(of: Answer.self) { group in
                        for index in 0..<5 {
                            group.addTask {
                                try await self.request(
                                    multiplexer,
                                    method: .POST,
                                    path: "/pkg.Service/Call\(index)",
                                    body: "12345",
                                    extraHeaders: [("content-type", "application/grpc"), ("te", "trailers")]
                                )
                            }
                        }
                        var answers: [Answer] = []
                        for try await answer in group { answers.append(answer) }
                        return answers
                    }
                }
                #expect(answers.count == 5)
                for answer in answers {
                    #expect(answer.status == 200)
                    #expect(answer.body.hasPrefix("h2 POST /pkg.Service/Call"), "\(answer.body)")
                    #expect(
                        answer.body.contains("te=trailers content-type=application/grpc received=5"),
                        "\(answer.body)"
                    )
                    #expect(
                        answer.trailers?.first(name: "grpc-status") == "0",
                        "\(String(describing: answer.trailers))"
                    )
                }
                try await channel.close()
                // An HTTP/1.1 client of the same route: chunked, trailers included, version 1.1.
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /h1 HTTP/1.1\r\nHost: a\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.body.hasPrefix("h2 GET /h1 te=- "))
                await client.close()
            }
        }

        /// Bodies larger than any window go both ways; local answers and bodiless responses end
        /// their streams; split cookie fields reach an HTTP/1.1 upstream as one.
        @Test func bodiesLocalAnswersAndBodilessResponses() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let (channel, multiplexer) = try await TestSupport.withTimeout(seconds: 10, "HTTP/2 connection") {
                    try await self.connectH2(ports[.https])
                }
                try await TestSupport.withTimeout(seconds: 30, "HTTP/2 requests", closing: channel) {
                    let size = 4 * 1024 * 1024
                    let upload = try await self.request(
                        multiplexer,
                        method: .POST,
                        path: "/count",
                        body: String(repeating: "u", count: size)
                    )
                    #expect(upload.status == 200)
                    #expect(upload.body == "received \(size)")

                    let download = try await self.request(multiplexer, path: "/download?n=\(size)")
                    #expect(download.status == 200)
                    #expect(download.body.utf8.count == size)

                    let missing = try await self.request(multiplexer, path: "/x", host: "b.example.com")
                    #expect(missing.status == 404)
                    #expect(missing.body.hasPrefix("no route for host \"b.example.com\""))

                    let head = try await self.request(multiplexer, method: .HEAD, path: "/head")
                    #expect(head.status == 200)
                    #expect(head.body.isEmpty)
                    #expect(head.headers.first(name: "x-upstream") == "a")

                    let cookies = try await self.request(
                        multiplexer,
                        path: "/cookies",
                        extraHeaders: [("cookie", "a=1"), ("cookie", "b=2")]
                    )
                    #expect(cookies.body.contains("\ncookie: a=1; b=2\n"), "\(cookies.body)")
                }
                try await channel.close()
            }
        }

        /// A stream the client resets (its upstream exchange still waiting) leaves the
        /// connection serving the next ones.
        @Test func aResetStreamLeavesTheConnectionServing() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream)) { _, ports in
                let (channel, multiplexer) = try await TestSupport.withTimeout(seconds: 10, "HTTP/2 connection") {
                    try await self.connectH2(ports[.https])
                }
                let slow = try await multiplexer.openStream { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(
                            HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .https)
                        )
                        return stream
                    }
                }
                var headers = HTTPHeaders()
                headers.add(name: "host", value: "a.example.com")
                try await slow.writeAndFlush(
                    HTTPClientRequestPart.head(
                        HTTPRequestHead(version: .http2, method: .GET, uri: "/slow", headers: headers)
                    )
                ).get()
                try await slow.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
                try await Task.sleep(nanoseconds: 100_000_000)
                // RST_STREAM (CANCEL); the close reports the stream as cancelled.
                try? await slow.close()
                for index in 0..<3 {
                    let answer = try await self.boundedRequest(channel, multiplexer, path: "/after-reset/\(index)")
                    #expect(answer.status == 200)
                    #expect(answer.body.hasPrefix("upstream a GET /after-reset/\(index)\n"))
                }
                try await channel.close()
            }
        }

        @Test func thePrefaceIsRecognisedAcrossReadsAndLookalikesStayHTTP1() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream)
            configuration.listeners.append(HTTPListener(address: "127.0.0.1", port: 0, kind: .http))
            try await TestSupport.withEngine(configuration) { _, ports in
                let client = try await TestSupport.connect(ports[.http])
                for piece in ["PRI * HT", "TP/2.0\r\n\r\nSM", "\r\n\r\n"] {
                    try await client.send(piece)
                    try await Task.sleep(nanoseconds: 50_000_000)
                }
                // The server's first HTTP/2 frame: its SETTINGS (type 4) on stream 0.
                let frameHeader = try await client.readBytes(9)
                #expect(frameHeader[3] == 0x04 && frameHeader[5...8].allSatisfy { $0 == 0 }, "\(frameHeader)")
                await client.close()

                let lookalike = try await TestSupport.connect(ports[.http])
                // "P" could still start the preface: the request waits for the next byte.
                try await lookalike.send("P")
                try await Task.sleep(nanoseconds: 50_000_000)
                try await lookalike.send("UT / HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 0\r\n\r\n")
                let response = try await lookalike.readResponse()
                #expect(response.status == 200, "\(response.body)")
                await lookalike.close()
            }
        }

        @Test func plainPortsAcceptHTTP2WithPriorKnowledge() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream)
            configuration.listeners.append(HTTPListener(address: "127.0.0.1", port: 0, kind: .http))
            try await TestSupport.withEngine(configuration) { _, ports in
                let (channel, multiplexer) = try await TestSupport.withTimeout(seconds: 10, "h2c connection") {
                    try await self.connectH2(ports[.http], tls: false)
                }
                let answer = try await self.boundedRequest(channel, multiplexer, path: "/h2c")
                #expect(answer.status == 200)
                #expect(answer.body.hasPrefix("upstream a GET /h2c\n"))
                #expect(answer.body.contains("\nx-forwarded-proto: http\n"))
                try await channel.close()
                // HTTP/1.1 on the same port is unaffected.
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /h1 HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                await client.close()
            }
        }
    }
}
