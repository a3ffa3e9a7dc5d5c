import NIOCore

/// The close state of one side of a spliced TCP connection (pure).
///
/// Each side's EOF becomes a write shutdown on the other side once the bytes queued for it
/// are flushed; when a side has both read EOF and been asked to shut its output, it closes
/// after its queued bytes are flushed. NIO escalates a write shutdown on a socket whose
/// input is already closed into a full close that drops queued writes, so that case is a
/// flushed close here rather than a shutdown.
struct HalfCloseState: Sendable, Hashable {
    enum Action: Sendable, Hashable {
        case none
        /// Shut the write side after the queued writes (`close(mode: .output)`).
        case shutdownOutput
        /// Close after the queued writes (or after the pending write shutdown).
        case closeWhenFlushed
        /// Close at once.
        case closeNow
    }

    private(set) var inputClosed = false
    private(set) var outputShutdownRequested = false
    private(set) var closing = false

    init() {}

    /// This side read EOF.
    mutating func inputDidClose() -> Action {
        guard !self.inputClosed, !self.closing else { return .none }
        self.inputClosed = true
        if self.outputShutdownRequested {
            self.closing = true
            return .closeWhenFlushed
        }
        return .none
    }

    /// The partner read EOF: nothing more will be written to this side.
    mutating func partnerInputDidClose() -> Action {
        guard !self.outputShutdownRequested, !self.closing else { return .none }
        self.outputShutdownRequested = true
        if self.inputClosed {
            self.closing = true
            return .closeWhenFlushed
        }
        return .shutdownOutput
    }

    /// The partner channel closed without the half-close dance (reset, error, idle, shutdown).
    /// `graceful` keeps the bytes already queued for this side.
    mutating func partnerDidClose(graceful: Bool) -> Action {
        guard !self.closing else { return .none }
        self.closing = true
        return graceful ? .closeWhenFlushed : .closeNow
    }

    /// This side closes now for its own reasons (error, idle timeout, shutdown), even when a
    /// flushed close is already under way.
    mutating func closeNow() -> Action {
        self.closing = true
        return .closeNow
    }
}

extension ChannelHandlerContext {
    /// Carries out a ``HalfCloseState`` action on this side's channel. `outputShutdown`
    /// remembers a pending write shutdown, which a later flushed close waits for (a write
    /// issued after the shutdown request would fail at once).
    func perform(_ action: HalfCloseState.Action, outputShutdown: inout EventLoopFuture<Void>?) {
        switch action {
        case .none:
            break
        case .shutdownOutput:
            let promise = self.eventLoop.makePromise(of: Void.self)
            outputShutdown = promise.futureResult
            self.close(mode: .output, promise: promise)
            promise.futureResult.assumeIsolated().whenFailure { _ in
                self.close(promise: nil)
            }
        case .closeWhenFlushed:
            let flushed = outputShutdown ?? self.writeAndFlush(NIOAny(ByteBuffer()))
            flushed.assumeIsolated().whenComplete { _ in
                self.close(promise: nil)
            }
        case .closeNow:
            self.close(promise: nil)
        }
    }
}
