import Logging
import Metrics
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import NIOSSL

/// An active health check of a pool's endpoints (`portico.dev/health-check` on the Service).
public struct HealthCheck: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A TCP connect succeeds.
        case tcp
        /// `GET path` answers 2xx or 3xx.
        case http(path: String)
    }

    public var kind: Kind
    public var interval: TimeAmount
    /// Consecutive failures that take an endpoint out; one success brings it back.
    public var failuresToMarkDown: Int

    /// Creates a check.
    public init(kind: Kind, interval: TimeAmount = .seconds(5), failuresToMarkDown: Int = 2) {
        self.kind = kind
        self.interval = interval
        self.failuresToMarkDown = failuresToMarkDown
    }

    /// The time one probe may take.
    var timeout: TimeAmount { min(self.interval, .seconds(2)) }
}

/// Probes endpoints on a timer and keeps the set of those that are down. Requests try down
/// endpoints last (still tried when nothing else is left). Reloads keep the state of
/// endpoints whose check did not change.
final class HealthChecker: Sendable {
    struct Target: Hashable, Sendable {
        let endpoint: UpstreamEndpoint
        let check: HealthCheck
        /// The service (for logs and metrics).
        let service: String
        /// The pool id whose TLS context HTTP probes use (nil: plain). Not the context itself,
        /// which every reload rebuilds: a probe keeps the context it started with.
        let tlsPool: String?
    }

    private struct Probe {
        var task: RepeatedTask
        var failures = 0
        var down = false
    }

    private let group: any EventLoopGroup
    private let logger: Logger
    private let metricsFactory: any MetricsFactory
    private let probes = NIOLockedValueBox<[Target: Probe]>([:])
    private let downEndpoints = NIOLockedValueBox<Set<UpstreamEndpoint>>([])

    init(group: any EventLoopGroup, logger: Logger, metricsFactory: any MetricsFactory) {
        self.group = group
        self.logger = logger
        self.metricsFactory = metricsFactory
    }

    /// Endpoints currently marked down (one lock; only read for pools that have a check).
    var down: Set<UpstreamEndpoint> { self.downEndpoints.withLockedValue { $0 } }

    /// Starts probing new targets and stops probing those no longer wanted.
    func update(_ targets: [Target], tls: [String: UpstreamTLSContext]) {
        let wanted = Set(targets)
        let (stopped, started): ([Target], [Target]) = self.probes.withLockedValue { probes in
            let stopped = probes.keys.filter { !wanted.contains($0) }
            for target in stopped { probes.removeValue(forKey: target)?.task.cancel() }
            let started = Array(wanted.filter { probes[$0] == nil })
            for target in started {
                let loop = self.group.next()
                let context = target.tlsPool.flatMap { tls[$0] }
                let task = loop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: target.check.interval) {
                    [self] _ in
                    self.probe(target, tls: context, on: loop).map { healthy in self.record(target, healthy: healthy) }
                }
                probes[target] = Probe(task: task)
            }
            return (stopped, started)
        }
        let stillProbed = Set(self.probes.withLockedValue { $0.keys.map(\.endpoint) })
        self.downEndpoints.withLockedValue { down in
            down = down.filter { stillProbed.contains($0) }
        }
        if !stopped.isEmpty || !started.isEmpty {
            self.logger.debug(
                "health checks updated",
                metadata: ["started": "\(started.count)", "stopped": "\(stopped.count)"]
            )
        }
    }

    func stopAll() {
        self.update([], tls: [:])
    }

    private func record(_ target: Target, healthy: Bool) {
        let change: Bool? = self.probes.withLockedValue { probes in
            guard var probe = probes[target] else { return nil }
            defer { probes[target] = probe }
            if healthy {
                probe.failures = 0
                if probe.down {
                    probe.down = false
                    return false
                }
            } else {
                probe.failures += 1
                if !probe.down && probe.failures >= target.check.failuresToMarkDown {
                    probe.down = true
                    return true
                }
            }
            return nil
        }
        guard let wentDown = change else { return }
        self.downEndpoints.withLockedValue { down in
            if wentDown { down.insert(target.endpoint) } else { down.remove(target.endpoint) }
        }
        let metadata: Logger.Metadata = ["service": "\(target.service)", "endpoint": "\(target.endpoint)"]
        if wentDown {
            self.logger.warning("endpoint failed its health check; tried last until it passes", metadata: metadata)
        } else {
            self.logger.info("endpoint passes its health check again", metadata: metadata)
        }
        Gauge(
            label: "portico_http_endpoint_up",
            dimensions: [("service", target.service), ("endpoint", target.endpoint.description)],
            factory: self.metricsFactory
        ).record(wentDown ? 0 : 1)
    }

    /// One probe: a connect, and for HTTP checks a GET whose status line must be 2xx or 3xx.
    private func probe(_ target: Target, tls: UpstreamTLSContext?, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        let promise = loop.makePromise(of: Bool.self)
        let endpoint = target.endpoint
        let request: ByteBuffer?
        if case .http(let path) = target.check.kind {
            let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
            request = ByteBuffer(
                string:
                    "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: portico-health-check\r\nConnection: close\r\n\r\n"
            )
        } else {
            request = nil
        }
        let timeout = target.check.timeout
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls, request != nil {
                        let serverName =
                            tls.serverName ?? (IPAddressRange.parse(endpoint.host) == nil ? endpoint.host : nil)
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.context, serverHostname: serverName)
                        )
                    }
                    if let request {
                        try channel.pipeline.syncOperations.addHandler(
                            StatusLineReader(request: request, promise: promise)
                        )
                    }
                }
            }
        bootstrap.connect(host: endpoint.host, port: endpoint.port).whenComplete { result in
            switch result {
            case .success(let channel):
                guard request != nil else {
                    promise.succeed(true)
                    channel.close(promise: nil)
                    return
                }
                let timer = channel.eventLoop.scheduleTask(in: timeout) {
                    promise.fail(ChannelError.connectTimeout(timeout))
                }
                promise.futureResult.whenComplete { _ in
                    timer.cancel()
                    channel.close(promise: nil)
                }
            case .failure:
                promise.succeed(false)
            }
        }
        return promise.futureResult.recover { _ in false }
    }

    /// Sends the probe request and succeeds with whether the status line says 2xx or 3xx.
    private final class StatusLineReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private let request: ByteBuffer
        private let promise: EventLoopPromise<Bool>
        private var received = ByteBuffer()
        private var done = false

        init(request: ByteBuffer, promise: EventLoopPromise<Bool>) {
            self.request = request
            self.promise = promise
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(self.wrapOutboundOut(self.request), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = self.unwrapInboundIn(data)
            self.received.writeBuffer(&buffer)
            // "HTTP/1.1 200" is 12 bytes.
            guard !self.done, self.received.readableBytes >= 12,
                let line = self.received.getString(at: self.received.readerIndex, length: 12)
            else { return }
            self.done = true
            let status = Int(line.dropFirst(9)) ?? 0
            self.promise.succeed(line.hasPrefix("HTTP/1.") && (200..<400).contains(status))
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !self.done {
                self.done = true
                self.promise.succeed(false)
            }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !self.done {
                self.done = true
                self.promise.succeed(false)
            }
            context.close(promise: nil)
        }
    }
}
