import NIOCore

/// The way out of one UDP socket. Sends go straight to the kernel (``DatagramSender``) while
/// it takes them. When the socket's buffer is full, the rest queue in the NIO channel, which
/// waits for writability, and later sends follow them there until that queue has drained, so
/// that order is kept. Without the direct path (not Linux) everything goes through the channel.
///
/// Used on the channel's event loop only.
final class DatagramOutput {
    private let sender: DatagramSender?
    /// The destination of channel writes without one of their own: the endpoint of a flow
    /// socket connected outside NIO (NIO then wants an addressed write). nil on a socket NIO
    /// connected (plain buffers) and on the listener (each write names its client).
    private let peer: SocketAddress?
    /// Writes queued in the channel and not yet done.
    private(set) var queuedInChannel = 0
    /// The largest datagram sent as part of a segmented run (0: none).
    private(set) var segmentLimit: Int

    init(sender: DatagramSender?, peer: SocketAddress?, segmentLimit: Int) {
        self.sender = sender
        self.peer = peer
        self.segmentLimit = sender == nil ? 0 : segmentLimit
    }

    /// Sends go straight to the kernel (nothing waits in the channel).
    var isDirect: Bool { self.sender != nil && self.queuedInChannel == 0 }

    /// Whether a datagram may be accepted now: always on the direct path (the kernel decides),
    /// otherwise while the channel's queue is below its high watermark.
    func isWritable(_ channel: any Channel) -> Bool {
        self.isDirect || channel.isWritable
    }

    /// Stops making segmented runs (the route refused them).
    func disableSegmentation() {
        self.segmentLimit = 0
    }

    /// Hands the datagrams of `batch` to the socket, to `destination` (nil: the connected
    /// peer), and empties the batch. They leave at the next ``flush(context:)``.
    func write(_ batch: inout DatagramBatch, to destination: DatagramAddress?, context: ChannelHandlerContext) {
        if let sender = self.sender, self.queuedInChannel == 0 {
            for send in batch.sends {
                sender.enqueue(send, to: destination)
            }
        } else {
            for send in batch.sends {
                for datagram in send.datagrams {
                    self.writeToChannel(datagram, to: destination?.address, context: context)
                }
            }
        }
        batch.removeAll()
    }

    /// Sends what ``write(_:to:context:)`` handed over.
    func flush(context: ChannelHandlerContext) -> DatagramSendResult {
        var result = DatagramSendResult()
        guard context.channel.isActive else {
            // The socket is closed (its descriptor may already be another socket's).
            result.dropped = self.sender?.discardAll() ?? 0
            return result
        }
        if let sender = self.sender, !sender.isEmpty {
            let (sent, leftover) = sender.flush()
            result = sent
            if sent.offloadRefused {
                self.segmentLimit = 0
            }
            for queued in leftover {
                for datagram in queued.send.datagrams {
                    self.writeToChannel(datagram, to: queued.address?.address, context: context)
                }
            }
        }
        if self.sender == nil || self.queuedInChannel > 0 {
            context.flush()
        }
        return result
    }

    private func writeToChannel(_ datagram: ByteBuffer, to destination: SocketAddress?, context: ChannelHandlerContext)
    {
        var promise: EventLoopPromise<Void>?
        if self.sender != nil {
            // Count it, so that direct sends resume only once the channel's queue is empty.
            self.queuedInChannel += 1
            let done = context.eventLoop.makePromise(of: Void.self)
            done.futureResult.assumeIsolated().whenComplete { _ in
                self.queuedInChannel -= 1
            }
            promise = done
        }
        if let target = destination ?? self.peer {
            context.write(NIOAny(AddressedEnvelope(remoteAddress: target, data: datagram)), promise: promise)
        } else {
            context.write(NIOAny(datagram), promise: promise)
        }
    }
}
