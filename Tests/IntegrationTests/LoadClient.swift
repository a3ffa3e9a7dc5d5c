import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A steady HTTP/1.1 load for tests that must see zero failures (reloads under load): each
/// connection sends a GET, waits for the whole response, and sends the next until the
/// deadline. Keep-alive connections reuse their socket; `fresh` ones close after every
/// response and reconnect (so listeners are exercised too). Anything but a complete 200
/// counts as a failure, with a description.
enum LoadClient {
    struct Result: Sendable {
        var succeeded = 0
        var failures: [String] = []
    }

    static func run(
        port: Int,
        host: String,
        keepAliveConnections: Int,
        freshConnections: Int,
        until deadline: NIODeadline
    ) async -> Result {
        let result = NIOLockedValueBox(Result())
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<(keepAliveConnections + freshConnections) {
                let keepAlive = index < keepAliveConnections
                group.addTask {
                    while NIODeadline.now() < deadline {
                        do {
                            let done = try await Self.connection(
                                port: port,
                                host: host,
                                keepAlive: keepAlive,
                                deadline: deadline,
                                result: result
                            )
                            if done { return }
                        } catch {
                            result.withLockedValue { $0.failures.append("connect: \(error)") }
                            return
                        }
                    }
                }
            }
        }
        return result.withLockedValue { $0 }
    }

    /// One connection's life; true when it ended at the deadline (or by a failure already recorded).
    private static func connection(
        port: Int,
        host: String,
        keepAlive: Bool,
        deadline: NIODeadline,
        result: NIOLockedValueBox<Result>
    ) async throws -> Bool {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Bool.self)
        _ = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        Exchanger(
                            host: host,
                            keepAlive: keepAlive,
                            deadline: deadline,
                            result: result,
                            done: promise
                        )
                    )
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return try await promise.futureResult.get()
    }

    private final class Exchanger: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        let host: String
        let keepAlive: Bool
        let deadline: NIODeadline
        let result: NIOLockedValueBox<Result>
        let done: EventLoopPromise<Bool>
        var status: HTTPResponseStatus?
        var inFlight = false
        var finished = false

        init(
            host: String,
            keepAlive: Bool,
            deadline: NIODeadline,
            result: NIOLockedValueBox<Result>,
            done: EventLoopPromise<Bool>
        ) {
            self.host = host
            self.keepAlive = keepAlive
            self.deadline = deadline
            self.result = result
            self.done = done
        }

        func channelActive(context: ChannelHandlerContext) {
            self.send(context: context)
            context.fireChannelActive()
        }

        private func send(context: ChannelHandlerContext) {
            var headers = HTTPHeaders([("host", self.host)])
            if !self.keepAlive { headers.add(name: "connection", value: "close") }
            self.inFlight = true
            self.status = nil
            context.write(
                self.wrapOutboundOut(
                    .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/load", headers: headers))
                ),
                promise: nil
            )
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.status = head.status
            case .body:
                break
            case .end:
                self.inFlight = false
                if self.status == .ok {
                    self.result.withLockedValue { $0.succeeded += 1 }
                } else {
                    self.fail(context: context, "status \(self.status.map { "\($0.code)" } ?? "none")")
                    return
                }
                if !self.keepAlive {
                    self.finish(context: context, atDeadline: NIODeadline.now() >= self.deadline)
                } else if NIODeadline.now() < self.deadline {
                    self.send(context: context)
                } else {
                    self.finish(context: context, atDeadline: true)
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if self.inFlight { self.fail(context: context, "connection closed with a request in flight") }
            self.finish(context: context, atDeadline: true)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.fail(context: context, "\(error)")
        }

        private func fail(context: ChannelHandlerContext, _ what: String) {
            guard !self.finished else { return }
            self.result.withLockedValue { $0.failures.append(what) }
            self.finish(context: context, atDeadline: true)
        }

        private func finish(context: ChannelHandlerContext, atDeadline: Bool) {
            guard !self.finished else { return }
            self.finished = true
            context.close(promise: nil)
            self.done.succeed(atDeadline)
        }
    }
}
