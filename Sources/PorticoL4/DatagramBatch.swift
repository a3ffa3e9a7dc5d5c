import NIOCore

/// One send of a batch: a single datagram, or a run of datagrams of one size (the last may
/// be shorter) laid end to end, to be sent as one segmented datagram (Linux `UDP_SEGMENT`).
struct DatagramSend {
    var buffer: ByteBuffer
    /// The size of each datagram of the run but the last.
    var segmentSize: Int
    /// Datagrams in `buffer`.
    var count: Int
    /// More datagrams of `segmentSize` bytes may join the run.
    var isOpen: Bool

    /// The datagrams of this send, as slices of its buffer.
    var datagrams: [ByteBuffer] {
        guard self.count > 1 else { return [self.buffer] }
        var remaining = self.buffer
        var result: [ByteBuffer] = []
        result.reserveCapacity(self.count)
        while remaining.readableBytes > 0 {
            result.append(remaining.readSlice(length: min(self.segmentSize, remaining.readableBytes))!)
        }
        return result
    }
}

/// The datagrams bound for one destination during one event-loop tick, in order, gathered
/// into sends as they arrive.
///
/// With segmentation offload, a run of consecutive datagrams of one size (the last of the run
/// may be shorter) is copied into one buffer and handed to the kernel as a single send: the
/// kernel makes one socket buffer and routes it once, and splits it back into the original
/// datagrams at the device (on loopback, at the receiving socket). The receiver sees exactly
/// the datagrams that went in, in the same order. Every other datagram (a lone one, one of
/// another size, one above the segment limit) is a send of its own. Each datagram is copied
/// once, from the receive buffer into its send.
struct DatagramBatch {
    /// The most datagrams in one segmented send (the kernel's `UDP_MAX_SEGMENTS` is 64 on
    /// older kernels, 128 on newer ones).
    static let maximumSegments = 64
    /// The most bytes in one segmented send (an IPv4 datagram carries at most 65,507).
    static let maximumBytes = 60_000

    private(set) var sends: [DatagramSend] = []
    /// Payload bytes held.
    private(set) var bytes = 0
    /// Datagrams held.
    private(set) var count = 0

    var isEmpty: Bool { self.count == 0 }

    /// Appends `prefix` + `payload` as one datagram, joining the open run when it has the run's
    /// size (or is shorter, which closes the run). `segmentLimit` is the largest datagram that
    /// may be part of a run (0: none); segments must fit the path MTU, so callers pass a size
    /// that no route refuses.
    mutating func append(
        _ payload: ByteBuffer,
        prefix: ByteBuffer? = nil,
        segmentLimit: Int,
        allocator: ByteBufferAllocator
    ) {
        let size = payload.readableBytes + (prefix?.readableBytes ?? 0)
        self.bytes += size
        self.count += 1
        if let last = self.sends.indices.last, self.sends[last].isOpen, size > 0,
            size <= self.sends[last].segmentSize, self.sends[last].count < Self.maximumSegments,
            self.sends[last].buffer.readableBytes + size <= Self.maximumBytes
        {
            if let prefix { self.sends[last].buffer.writeImmutableBuffer(prefix) }
            self.sends[last].buffer.writeImmutableBuffer(payload)
            self.sends[last].count += 1
            if size < self.sends[last].segmentSize { self.sends[last].isOpen = false }
            return
        }
        let runs = size > 0 && size <= segmentLimit
        var buffer = allocator.buffer(capacity: runs ? min(size * 8, Self.maximumBytes) : size)
        if let prefix { buffer.writeImmutableBuffer(prefix) }
        buffer.writeImmutableBuffer(payload)
        self.sends.append(DatagramSend(buffer: buffer, segmentSize: size, count: 1, isOpen: runs))
    }

    /// Empties the batch, keeping its storage.
    mutating func removeAll() {
        self.sends.removeAll(keepingCapacity: true)
        self.bytes = 0
        self.count = 0
    }
}
