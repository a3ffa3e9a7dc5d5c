import NIOCore

/// Turns the flushes of one event-loop tick into one: the first flush schedules a real flush
/// at the end of the tick (after the I/O events being handled), later ones in the same tick
/// do nothing. Writes pass through at once; only the syscall that sends them is shared.
///
/// Sits under the HTTP/2 handler of a downstream connection: every stream whose upstream
/// response arrived flushes the connection, and without this each flush became its own TLS
/// record and `write`. With this, the responses that completed in one tick leave together.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny

    private var flushScheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !self.flushScheduled else { return }
        self.flushScheduled = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.flushScheduled = false
            context.flush()
        }
    }
}
