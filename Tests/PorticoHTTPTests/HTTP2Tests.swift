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
        }

        /// An HTTP/2 client connection: TLS with ALPN h2, one stream per request.
        private func connectH2(_ port: Int?) async throws -> (any Channel, NIOHTTP2Handler.AsyncStreamMultiplexer<Void>)
        {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            tls.applicationProtocols = ["h2"]
            let context = try NIOSSLContext(configuration: tls)
            let channel = try await ClientBootstrap(group: TestSupport.group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: "a.example.com")
                        )
                    }
                }
                .connect(host: "127.0.0.1", port: port!).get()
            let multiplexer = try await channel.eventLoop.flatSubmit {
                channel.configureAsyncHTTP2Pipeline(mode: .client) { stream in
                    stream.eventLoop.makeSucceededVoidFuture()
                }
            }.get()
            return (channel, multiplexer)
        }

        private func request(
            _ multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>,
            method: HTTPMethod = .GET,
            path: String,
            body: String? = nil
        ) async throws -> Answer {
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
            return try await stream.executeThenClose { inbound, outbound in
                var headers = HTTPHeaders()
                headers.add(name: "host", value: "a.example.com")
                if let body { headers.add(name: "content-length", value: String(body.utf8.count)) }
                try await outbound.write(
                    .head(HTTPRequestHead(version: .http2, method: method, uri: path, headers: headers))
                )
                if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
                try await outbound.write(.end(nil))
                var answer = Answer(status: 0, headers: [:], body: "")
                for try await part in inbound {
                    switch part {
                    case .head(let head):
                        answer.status = Int(head.status.code)
                        answer.headers = head.headers
                    case .body(let buffer):
                        answer.body += String(buffer: buffer)
                    case .end:
                        return answer
                    }
                }
                return answer
            }
        }

        @Test func streamsAreProxiedAsHTTP1Requests() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                listeners: [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)],
                defaultCertificate: TLSCertificate(
                    serverNames: [],
                    certificateChainPEM: TestCertificates.defaultCertificate,
                    privateKeyPEM: TestCertificates.defaultKey
                ),
                routes: TestSupport.routes([
                    (Optional("a.example.com"), "/", HTTPRoute(service: "default/a", pool: "a"))
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])]
            )
            try await TestSupport.withEngine(configuration) { _, ports in
                let (channel, multiplexer) = try await self.connectH2(ports[.https])
                let answers = try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
                    for index in 0..<20 {
                        group.addTask {
                            if index % 2 == 0 {
                                return (index, try await self.request(multiplexer, path: "/get/\(index)"))
                            }
                            return (
                                index,
                                try await self.request(multiplexer, method: .POST, path: "/count", body: "body\(index)")
                            )
                        }
                    }
                    var result: [Int: Answer] = [:]
                    for try await (index, answer) in group { result[index] = answer }
                    return result
                }
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
                let chunked = try await self.request(multiplexer, path: "/chunked")
                #expect(chunked.body == "one,two,three")
                let missing = try await self.request(multiplexer, path: "/nowhere")
                #expect(missing.status == 200)
                try await channel.close()
            }
        }
    }
}
