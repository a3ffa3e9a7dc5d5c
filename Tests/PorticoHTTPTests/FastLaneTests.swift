#if os(Linux)
import Foundation
import Glibc
import Metrics
import NIOCore
import NIOPosix
@testable import PorticoHTTP
import Testing

extension PorticoHTTPEngineTests {
    /// The fast lane's first stage (HTTPFastLane.swift): it owns plain listeners, reads each
    /// connection's first bytes and hands the connection to the engine with them. The whole
    /// engine suite also runs through it with `PORTICO_TEST_FAST_LANE=1` (.ci/run does).
    @Suite("Fast lane")
    struct FastLaneTests {
        private func configuration(
            _ upstream: TestUpstream,
            limits: HTTPLimits = HTTPLimits()
        ) -> HTTPEngineConfiguration {
            HTTPEngineConfiguration(
                routes: TestSupport.routes([(nil, "/", HTTPRoute(service: "default/a", pool: "a"))]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])],
                limits: limits
            )
        }

        /// Names of this process's threads.
        private static func threadNames() -> [String] {
            guard let directory = opendir("/proc/self/task") else { return [] }
            defer { closedir(directory) }
            var names: [String] = []
            while let entry = readdir(directory) {
                let task = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard task != ".", task != "..", let file = fopen("/proc/self/task/\(task)/comm", "r") else { continue }
                var line = [CChar](repeating: 0, count: 32)
                if fgets(&line, 32, file) != nil {
                    names.append(String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8($0) }, as: UTF8.self))
                }
                fclose(file)
            }
            return names
        }

        /// One lane per event loop of the group.
        private static var lanes: Int { Array(TestSupport.group.makeIterator()).count }

        private static func served(_ engine: HTTPEngine) -> Int {
            engine.fastLaneStatistics.reduce(0) { $0 + $1.served }
        }

        private static func handedOver(_ engine: HTTPEngine) -> Int {
            engine.fastLaneStatistics.reduce(0) { $0 + $1.handedOver }
        }

        /// Whether the number of lane threads becomes `count` within a second (a new thread
        /// names itself when it starts).
        private static func laneThreads(becomes count: Int) async -> Bool {
            for _ in 0..<100 {
                if Self.threadNames().filter({ $0 == "portico-fast" }).count == count { return true }
                try? await Task.sleep(nanoseconds: 10_000_000)
            }
            return false
        }

        /// GET and HEAD on a plain route are answered by the lane itself: forwarding fields,
        /// hop-by-hop fields, pipelining, chunked and large responses (with backpressure), as
        /// the engine answers them. The first request it does not serve (a body) hands the
        /// connection over, with its bytes; the connection then stays with the engine.
        @Test func theLaneServesPlainGETsAndHandsTheRestOver() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let limits = HTTPLimits(headerReadTimeout: .milliseconds(500))
            try await TestSupport.withEngine(self.configuration(upstream, limits: limits), fastLane: true) {
                engine,
                ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send(
                    "GET /one HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive\r\nX-Kept:  yes \r\n\r\n"
                        + "HEAD /two HTTP/1.1\r\nHost: app.example\r\n\r\n"
                        + "GET /chunked HTTP/1.1\r\nHost: app.example\r\n\r\n"
                )
                let one = try await client.readResponse()
                #expect(one.status == 200)
                #expect(one.body.hasPrefix("upstream a GET /one\n"))
                for line in [
                    "x-kept: yes", "x-forwarded-for: 127.0.0.1", "x-forwarded-proto: http",
                    "x-forwarded-host: app.example", "x-forwarded-port: \(ports[.http]!)", "x-real-ip: 127.0.0.1",
                ] {
                    #expect(one.body.contains("\n\(line)\n"), "\(line)")
                }
                #expect(!one.body.contains("\nconnection:"))
                #expect(one.header("x-upstream") == "a")
                #expect(one.header("keep-alive") == nil)  // the upstream's hop-by-hop field
                let two = try await client.readResponse(headRequest: true)
                #expect(two.status == 200 && two.body.isEmpty && two.header("content-length") != nil)
                let three = try await client.readResponse()
                #expect(three.body == "one,two,three")
                #expect(three.header("transfer-encoding") == "chunked")

                // 8 MiB through the lane, read slowly at first (the lane stops reading the
                // upstream while the client does not take more).
                try await client.send("GET /download?n=8388608 HTTP/1.1\r\nHost: app.example\r\n\r\n")
                try await Task.sleep(nanoseconds: 200_000_000)
                let download = try await client.readResponse(keepBody: false)
                #expect(download.bodyLength == 8_388_608)
                #expect(Self.served(engine) == 4)
                #expect(Self.handedOver(engine) == 0)
                // Between requests the connection holds no buffer (idle keep-alive memory).
                #expect(await engine.fastLaneIdleBufferCapacity() == 0)

                // A body by Content-Length is the lane's too, pipelined with what follows.
                try await client.send(
                    "POST /count HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\n\r\nabc"
                        + "GET /between HTTP/1.1\r\nHost: app.example\r\n\r\n"
                )
                #expect(try await client.readResponse().body == "received 3")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /between\n"))
                #expect(Self.served(engine) == 6)
                #expect(Self.handedOver(engine) == 0)

                // A chunked body: the engine's, from here on.
                try await client.send(
                    "POST /count HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "5\r\nhello\r\n0\r\n\r\n"
                )
                #expect(try await client.readResponse().body == "received 5")
                #expect(Self.handedOver(engine) == 1)
                try await client.send("GET /after HTTP/1.1\r\nHost: app.example\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /after\n"))
                #expect(Self.served(engine) == 6)

                // More pipelined requests than the lane buffers (100 x ~4 KB; it reads 256 KiB
                // at most, 64 KiB while a request is upstream): the rest is read from the socket
                // as the answers go out, all in order.
                let pipelined = try await TestSupport.connect(ports[.http])
                let cookie = String(repeating: "c", count: 4000)
                var burst = ""
                for index in 0..<100 {
                    burst += "GET /p\(index) HTTP/1.1\r\nHost: app.example\r\nCookie: \(cookie)\r\n\r\n"
                }
                try await pipelined.send(burst)
                for index in 0..<100 {
                    #expect(try await pipelined.readResponse().body.hasPrefix("upstream a GET /p\(index)\n"))
                }
                // After a HEAD, a head that never completes gets a whole 408 (with its body).
                try await pipelined.send("HEAD /h HTTP/1.1\r\nHost: app.example\r\n\r\nGET /never HTTP/1.1\r\n")
                #expect(try await pipelined.readResponse(headRequest: true).status == 200)
                let timeout = try await pipelined.readResponse()
                #expect(timeout.status == 408 && timeout.body == "request header read timeout\n")
                await pipelined.close()

                // `Connection: close`: answered, marked, and the lane closes.
                let closing = try await TestSupport.connect(ports[.http])
                try await closing.send("GET /bye HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
                let bye = try await closing.readResponse()
                #expect(bye.status == 200 && bye.header("connection") == "close")
                #expect(try await closing.waitForClose())
                #expect(Self.served(engine) == 109)
                await client.close()
            }
        }

        /// Buffers emptied between requests wait as spares for the next exchange, and are freed
        /// once a second has passed without their being needed.
        @Test func spareBuffersAreFreedWhenNotNeeded() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream), fastLane: true) { engine, ports in
                var clients: [RawClient] = []
                for _ in 0..<8 { clients.append(try await TestSupport.connect(ports[.http])) }
                for client in clients { try await client.send("GET /s HTTP/1.1\r\nHost: app.example\r\n\r\n") }
                for client in clients { #expect(try await client.readResponse().status == 200) }
                #expect(await engine.fastLaneSpareCount() > 0)
                var spares = -1
                for _ in 0..<40 where spares != 0 {
                    try await Task.sleep(nanoseconds: 100_000_000)
                    spares = await engine.fastLaneSpareCount()
                }
                #expect(spares == 0)
                // And the next request gets new buffers.
                try await clients[0].send("GET /again HTTP/1.1\r\nHost: app.example\r\n\r\n")
                #expect(try await clients[0].readResponse().body.hasPrefix("upstream a GET /again\n"))
                for client in clients { await client.close() }
            }
        }

        /// Each event loop of the group gets a lane with its own socket on the port
        /// (SO_REUSEPORT): the kernel spreads connections over them, and all serve.
        @Test func everyLaneTakesConnections() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            try await TestSupport.withEngine(self.configuration(upstream), fastLane: true) { engine, ports in
                #expect(engine.fastLaneStatistics.count == Self.lanes)
                for index in 0..<40 {
                    let client = try await TestSupport.connect(ports[.http])
                    try await client.send("GET /c\(index) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    #expect(try await client.readResponse().body.hasPrefix("upstream a GET /c\(index)\n"))
                    await client.close()
                }
                #expect(Self.served(engine) == 40)
                if Self.lanes > 1 {
                    // 40 connections all on one of two lanes: one chance in 2^39.
                    #expect(engine.fastLaneStatistics.allSatisfy { $0.served > 0 }, "\(engine.fastLaneStatistics)")
                }
            }
        }

        /// Failures answer as the engine answers them: a silent upstream gets 504, an
        /// unreachable one 502 after the connect attempts, one that closes before answering
        /// 502 (a reused connection is tried once more first), one that closes mid-response
        /// closes the client.
        @Test func upstreamFailuresAnswerAsTheEngineDoes() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let dead = try await TestSupport.deadPort()
            let cutting = try await ScriptedUpstream.start(
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it",
                close: true
            )
            defer { Task { try? await cutting.close() } }
            let silent = try await ScriptedUpstream.start("", close: true)
            defer { Task { try? await silent.close() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    ("dead.example", "/", HTTPRoute(service: "default/dead", pool: "dead")),
                    ("cut.example", "/", HTTPRoute(service: "default/cut", pool: "cut")),
                    ("closes.example", "/", HTTPRoute(service: "default/closes", pool: "closes")),
                    (nil, "/", HTTPRoute(service: "default/a", pool: "a", readTimeout: .milliseconds(300))),
                ]),
                pools: [
                    "a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)]),
                    "dead": UpstreamPool(endpoints: [UpstreamEndpoint(host: "127.0.0.1", port: dead)]),
                    "cut": UpstreamPool(endpoints: [
                        UpstreamEndpoint(host: "127.0.0.1", port: cutting.localAddress!.port!)
                    ]),
                    "closes": UpstreamPool(endpoints: [
                        UpstreamEndpoint(host: "127.0.0.1", port: silent.localAddress!.port!)
                    ]),
                ]
            )
            try await TestSupport.withEngine(configuration, fastLane: true) { engine, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                let slow = try await client.readResponse()
                #expect(slow.status == 504)
                #expect(slow.body == "upstream timed out for service \"default/a\" (proxy-read-timeout)\n")
                try await client.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                #expect(Self.handedOver(engine) == 0)

                try await client.send("GET / HTTP/1.1\r\nHost: dead.example\r\n\r\n")
                let failed = try await client.readResponse()
                #expect(failed.status == 502)
                #expect(failed.body == "upstream connect failed for service \"default/dead\" (127.0.0.1:\(dead))\n")
                #expect(failed.header("connection") == nil)  // kept, as the engine keeps it
                try await client.send("GET / HTTP/1.1\r\nHost: closes.example\r\n\r\n")
                let closed = try await client.readResponse()
                #expect(closed.status == 502)
                #expect(closed.body == "upstream closed the connection for service \"default/closes\"\n")
                #expect(try await client.waitForClose())
                #expect(Self.handedOver(engine) == 0)
                await client.close()

                // The upstream closes in the middle of the body: so does the client's connection.
                let cut = try await TestSupport.connect(ports[.http])
                try await cut.send("GET / HTTP/1.1\r\nHost: cut.example\r\n\r\n")
                await #expect(throws: (any Error).self) { _ = try await cut.readResponse() }
                #expect(Self.handedOver(engine) == 0)
            }
        }

        /// Request bodies by Content-Length, answered the same with and without the lane (and by
        /// the lane itself when it runs): streamed both ways, an early answer from the upstream
        /// closes the connection, a failed connect is not retried for POST (the body read, the
        /// connection kept), and the send timeout while the body is incomplete.
        @Test(arguments: [false, true])
        func requestBodiesByContentLength(fastLane: Bool) async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let early = try await ScriptedUpstream.start(
                "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\n\r\nnope\n"
            )
            defer { Task { try? await early.close() } }
            let dead = UpstreamEndpoint(host: "127.0.0.1", port: try await TestSupport.deadPort())
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    ("early.example", "/", HTTPRoute(service: "default/early", pool: "early")),
                    ("mixed.example", "/", HTTPRoute(service: "default/mixed", pool: "mixed")),
                    (
                        nil, "/",
                        HTTPRoute(service: "default/a", pool: "a", maxBodySize: nil, sendTimeout: .milliseconds(300))
                    ),
                ]),
                pools: [
                    "a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)]),
                    "early": UpstreamPool(endpoints: [
                        UpstreamEndpoint(host: "127.0.0.1", port: early.localAddress!.port!)
                    ]),
                    "mixed": UpstreamPool(endpoints: [dead, TestSupport.endpoint(upstream)]),
                ]
            )
            try await TestSupport.withEngine(configuration, fastLane: fastLane) { engine, ports in
                // 3 MiB up in pieces, then the next request on the same connection.
                let client = try await TestSupport.connect(ports[.http])
                let total = 3 * 1024 * 1024
                try await client.send("PUT /count HTTP/1.1\r\nHost: x\r\nContent-Length: \(total)\r\n\r\n")
                let piece = ByteBuffer(repeating: UInt8(ascii: "u"), count: 64 * 1024)
                for _ in 0..<(total / piece.readableBytes) { try await client.send(piece) }
                #expect(try await client.readResponse().body == "received \(total)")

                // The first endpoint of the pool is dead: POST is not tried elsewhere (502, and its
                // body, all here, is read, so the connection stays); PUT is.
                try await client.send("POST /p HTTP/1.1\r\nHost: mixed.example\r\nContent-Length: 4\r\n\r\nbody")
                let refused = try await client.readResponse()
                #expect(refused.status == 502)
                #expect(refused.header("connection") == nil)
                try await client.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /after\n"))

                await client.close()

                // The client stops sending (half-close) in the middle of a body on a connection it
                // used before: closed without an answer (a 504 would come after the send timeout).
                let leaving = try Self.halfClosedExchange(
                    port: ports[.http]!,
                    first: "GET /first HTTP/1.1\r\nHost: x\r\n\r\n",
                    then: "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"
                )
                #expect(leaving.components(separatedBy: "HTTP/1.1 ").count == 2, "\(leaving)")
                #expect(!leaving.contains("504"))

                // The upstream answers before the body is complete: the answer, then the close
                // (decided at the answer's end: the body could still have ended meanwhile).
                let eager = try await TestSupport.connect(ports[.http])
                try await eager.send("POST / HTTP/1.1\r\nHost: early.example\r\nContent-Length: 100000\r\n\r\nabc")
                let answered = try await eager.readResponse()
                #expect(answered.status == 413 && answered.body == "nope\n")
                #expect(try await eager.waitForClose())

                // Part of the body, then silence: 504 by the send timeout, and the close.
                let stalled = try await TestSupport.connect(ports[.http])
                try await stalled.send("POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
                let timedOut = try await stalled.readResponse()
                #expect(timedOut.status == 504)
                #expect(timedOut.body.contains("(proxy-send-timeout)"), "\(timedOut.body)")
                #expect(try await stalled.waitForClose())
                if fastLane {
                    #expect(Self.handedOver(engine) == 0)
                    #expect(Self.served(engine) == 6)
                }
            }
        }

        /// A body larger than the lane's buffer with a request after it, in one write, on new
        /// upstream connections (none kept idle): the body's end is seen however the bytes
        /// arrive, and the next request is answered on the same connection.
        @Test(arguments: [false, true])
        func aBodyAndTheNextRequestInOneWrite(fastLane: Bool) async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    (nil, "/", HTTPRoute(service: "default/a", pool: "a", readTimeout: .seconds(2)))
                ]),
                pools: ["a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)])],
                limits: HTTPLimits(maxIdleUpstreamConnectionsPerEndpoint: 0)
            )
            try await TestSupport.withEngine(configuration, fastLane: fastLane) { engine, ports in
                let client = try await TestSupport.connect(ports[.http])
                let body = String(repeating: "b", count: 100_000)
                for _ in 0..<5 {
                    try await client.send(
                        "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n\(body)"
                            + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
                    )
                    #expect(try await client.readResponse().body == "received 100000")
                    #expect(try await client.readResponse().body.hasPrefix("upstream a GET /next\n"))
                }
                await client.close()
                if fastLane { #expect(Self.served(engine) == 10) }
            }
        }

        /// Over a blocking socket: sends `first`, waits for its answer to be sent, sends `then`,
        /// shuts the write side and returns everything read until the peer closes (3 s at most).
        private static func halfClosedExchange(port: Int, first: String, then: String) throws -> String {
            let descriptor = try blockingConnection(port: port)
            defer { close(descriptor) }
            _ = first.withCString { send(descriptor, $0, strlen($0), 0) }
            usleep(200_000)
            _ = then.withCString { send(descriptor, $0, strlen($0), 0) }
            shutdown(descriptor, CInt(SHUT_WR))
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(descriptor, &chunk, chunk.count, 0)
                if count <= 0 { break }
                received += chunk[0..<count]
            }
            return String(decoding: received, as: UTF8.self)
        }

        /// With an access log configured the lane still serves, and writes the lines the
        /// engine writes for the same requests: answered, HEAD, 502 after a failed connect, 504,
        /// and 499 when the client leaves while its request is upstream.
        @Test func theLaneWritesTheEnginesAccessLogLines() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let dead = try await TestSupport.deadPort()
            let engineLines = try await self.accessLogLines(upstream, dead: dead, fastLane: false)
            let laneLines = try await self.accessLogLines(upstream, dead: dead, fastLane: true)
            #expect(engineLines.map { $0["status"] } == ["200", "200", "502", "504", "499"])
            #expect(engineLines.first?["bytes_sent"] != "0")
            #expect(laneLines == engineLines)
        }

        /// The access log lines of a fixed sequence of requests, without their time fields.
        private func accessLogLines(
            _ upstream: TestUpstream,
            dead: Int,
            fastLane: Bool
        ) async throws -> [[String: String]] {
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("portico-lane-\(getpid())-\(fastLane).log").path
            defer { unlink(path) }
            let log = try AccessLog(path: path, format: .json)
            var configuration = HTTPEngineConfiguration(
                routes: TestSupport.routes([
                    ("dead.example", "/", HTTPRoute(service: "default/dead", pool: "dead")),
                    (nil, "/", HTTPRoute(service: "default/a", pool: "a", readTimeout: .milliseconds(300))),
                ]),
                pools: [
                    "a": UpstreamPool(endpoints: [TestSupport.endpoint(upstream)]),
                    "dead": UpstreamPool(endpoints: [UpstreamEndpoint(host: "127.0.0.1", port: dead)]),
                ]
            )
            configuration.accessLog = log
            var text = ""
            try await TestSupport.withEngine(configuration, fastLane: fastLane) { engine, ports in
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /one?x=1 HTTP/1.1\r\nHost: app.example\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                try await client.send("HEAD /two HTTP/1.1\r\nHost: app.example\r\n\r\n")
                #expect(try await client.readResponse(headRequest: true).status == 200)
                try await client.send("GET /gone HTTP/1.1\r\nHost: dead.example\r\n\r\n")
                #expect(try await client.readResponse().status == 502)
                try await client.send("GET /slow HTTP/1.1\r\nHost: app.example\r\n\r\n")
                #expect(try await client.readResponse().status == 504)
                await client.close()
                let leaving = try await TestSupport.connect(ports[.http])
                try await leaving.send("GET /slow?leave HTTP/1.1\r\nHost: app.example\r\n\r\n")
                try await Task.sleep(nanoseconds: 50_000_000)
                await leaving.close()
                // Lines are written every 200 ms.
                for _ in 0..<40 {
                    text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                    if text.split(separator: "\n").count >= 5 { break }
                    try await Task.sleep(nanoseconds: 50_000_000)
                }
                if fastLane {
                    #expect(Self.served(engine) == 4)
                    #expect(Self.handedOver(engine) == 0)
                }
            }
            log.close()
            return text.split(separator: "\n").map { line in
                let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
                var fields: [String: String] = [:]
                for (key, value) in object where key != "time" && key != "duration_ms" { fields[key] = "\(value)" }
                return fields
            }
        }

        @Test func plainListenersAreAcceptedByTheLaneAndServedByTheEngine() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let before = Self.threadNames().filter { $0 == "portico-fast" }.count
            let limits = HTTPLimits(headerReadTimeout: .milliseconds(300))
            try await TestSupport.withEngine(self.configuration(upstream, limits: limits), fastLane: true) {
                engine,
                ports in
                #expect(await Self.laneThreads(becomes: before + Self.lanes))
                // Two pipelined requests in the first segment: both reach the engine, in order,
                // and the connection stays usable.
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /one\n"))
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /two\n"))
                try await client.send("GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().body.hasPrefix("upstream a GET /three\n"))
                #expect(engine.openConnections == 1)
                await client.close()

                // A head split over several segments, the first of one byte.
                let split = try await TestSupport.connect(ports[.http])
                try await split.send("G")
                try await Task.sleep(nanoseconds: 20_000_000)
                try await split.send("ET /four HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await split.readResponse().body.hasPrefix("upstream a GET /four\n"))
                await split.close()

                // Nothing sent: closed at the header timeout, as the engine closes such connections.
                let silent = try await TestSupport.connect(ports[.http])
                let started = NIODeadline.now()
                #expect(try await silent.waitForClose())
                #expect(NIODeadline.now() - started < .seconds(2))
            }
            // Shut down: the lanes' threads are gone. (Polled: a thread the lane started, e.g. a
            // worker of the concurrency pool, carries its name until it names itself.)
            #expect(await Self.laneThreads(becomes: before))
        }

        @Test func reloadKeepsTheLanesListenerAndRemovalClosesIt() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream)
            configuration.listeners = [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)]
            try await TestSupport.withEngine(configuration, fastLane: true) { engine, ports in
                let port = try #require(ports[.http])
                let kept = try await TestSupport.connect(port)
                try await kept.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await kept.readResponse().status == 200)

                try await engine.apply(configuration)
                #expect(engine.boundListeners.values.map(\.port) == [port])
                try await kept.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await kept.readResponse().status == 200)
                let fresh = try await TestSupport.connect(port)
                try await fresh.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await fresh.readResponse().status == 200)
                await fresh.close()

                // Without the listener: the port refuses, the open connection finishes its work.
                var without = configuration
                without.listeners = [HTTPListener(address: "127.0.0.1", port: 0, kind: .https)]
                try await engine.apply(without)
                await #expect(throws: (any Error).self) { try await TestSupport.connect(port) }
                try await kept.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await kept.readResponse().status == 200)
                await kept.close()
            }
        }

        /// A reload that shortens the header timeout applies to connections accepted after it,
        /// even while connections accepted before it still wait with the longer one.
        @Test func aShorterHeaderTimeoutAfterAReloadApplies() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            var configuration = self.configuration(upstream, limits: HTTPLimits(headerReadTimeout: .seconds(30)))
            configuration.listeners = [HTTPListener(address: "127.0.0.1", port: 0, kind: .http)]
            try await TestSupport.withEngine(configuration, fastLane: true) { engine, ports in
                let early = try await TestSupport.connect(ports[.http])
                try await Task.sleep(nanoseconds: 50_000_000)  // accepted under the 30 s timeout
                var shorter = configuration
                shorter.limits = HTTPLimits(headerReadTimeout: .milliseconds(300))
                try await engine.apply(shorter)
                let late = try await TestSupport.connect(ports[.http])
                let started = NIODeadline.now()
                #expect(try await late.waitForClose())
                #expect(NIODeadline.now() - started < .seconds(3))
                // The early one still waits, and is served when its request comes.
                try await early.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await early.readResponse().status == 200)
                await early.close()
            }
        }

        /// An engine whose first configuration fails is dropped without `shutdown`: its lane's
        /// thread stops with it. A lane shut down refuses new listeners and closes nothing twice.
        @Test func lanesStopWithTheirEngineAndRefuseWorkOnceShutDown() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let taken = try await ServerBootstrap(group: TestSupport.group).bind(host: "127.0.0.1", port: 0).get()
            defer { taken.close(promise: nil) }
            let before = Self.threadNames().filter { $0 == "portico-fast" }.count
            do {
                let engine = HTTPEngine(group: TestSupport.group, logger: TestSupport.logger, fastLane: true)
                var configuration = self.configuration(upstream)
                configuration.listeners = [
                    HTTPListener(address: "127.0.0.1", port: taken.localAddress!.port!, kind: .http)
                ]
                await #expect(throws: IOError.self) { try await engine.apply(configuration) }
                #expect(await Self.laneThreads(becomes: before + Self.lanes))
                withExtendedLifetime(engine) {}
            }
            // (The last reference may go a moment later, from the task that ran `apply`; and a
            // thread the lane started carries its name until it names itself.)
            #expect(await Self.laneThreads(becomes: before))

            let core = EngineCore(
                logger: TestSupport.logger,
                state: try EngineState(HTTPEngineConfiguration()),
                metricsFactory: NOOPMetricsHandler.instance,
                group: TestSupport.group
            )
            let lane = try HTTPFastLane(core: core) { descriptor, _, _, _ in close(descriptor) }
            let listener = try lane.listen(HTTPListener(address: "127.0.0.1", port: 0, kind: .http))
            lane.shutdown()
            lane.shutdown()
            await lane.stopListening(listener)
            #expect(throws: IOError.self) { try lane.listen(HTTPListener(address: "127.0.0.1", port: 0, kind: .http)) }
            // The port is free again: the listener was closed once, by the shutdown.
            let rebound = try await ServerBootstrap(group: TestSupport.group)
                .bind(host: "127.0.0.1", port: listener.localAddress.port!).get()
            try await rebound.close()
        }

        @Test func aTakenPortIsAnErrorAndTheOldConfigurationStays() async throws {
            let upstream = try await TestUpstream.start(name: "a", group: TestSupport.group)
            defer { Task { await upstream.stop() } }
            let taken = try await ServerBootstrap(group: TestSupport.group).bind(host: "127.0.0.1", port: 0).get()
            defer { taken.close(promise: nil) }
            try await TestSupport.withEngine(self.configuration(upstream), fastLane: true) { engine, ports in
                var configuration = self.configuration(upstream)
                configuration.listeners = [
                    HTTPListener(address: "127.0.0.1", port: ports[.http]!, kind: .http),
                    HTTPListener(address: "127.0.0.1", port: taken.localAddress!.port!, kind: .http),
                ]
                await #expect(throws: IOError.self) { try await engine.apply(configuration) }
                let client = try await TestSupport.connect(ports[.http])
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                await client.close()
            }
        }
    }
}
/// A blocking TCP connection to 127.0.0.1:`port` whose reads give up after 3 s (the caller
/// closes it).
func blockingConnection(port: Int) throws -> CInt {
    let descriptor = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw ClientError(description: "socket: \(errno)") }
    var timeout = timeval(tv_sec: 3, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        let error = errno
        close(descriptor)
        throw ClientError(description: "connect: \(error)")
    }
    return descriptor
}
#endif
