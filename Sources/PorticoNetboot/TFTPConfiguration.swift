/// Limits and defaults of the TFTP server.
public struct TFTPConfiguration: Hashable, Sendable {
    /// The largest block size granted (path MTU - 32: 1468 for a 1500-byte MTU).
    public var maximumBlockSize: Int
    /// The largest window granted (RFC 7440).
    public var maximumWindowSize: Int
    /// Retransmission timeout when the client asks for none.
    public var defaultTimeout: Duration
    /// Timeouts in a row without progress after which a transfer is abandoned.
    public var maximumRetransmissions: Int
    /// Longest a transfer may take in all.
    public var maximumTransferDuration: Duration
    /// Transfers served at once; further requests get an error.
    public var maximumConcurrentTransfers: Int

    /// The defaults: blocks up to 1468 bytes, windows up to 64, 1 s timeout, 5 retransmissions,
    /// 10 minutes per transfer, 64 transfers at once.
    public init(
        maximumBlockSize: Int = 1468,
        maximumWindowSize: Int = 64,
        defaultTimeout: Duration = .seconds(1),
        maximumRetransmissions: Int = 5,
        maximumTransferDuration: Duration = .seconds(600),
        maximumConcurrentTransfers: Int = 64
    ) {
        self.maximumBlockSize = min(max(maximumBlockSize, 8), TFTPPacket.maximumPayloadLength)
        self.maximumWindowSize = min(max(maximumWindowSize, 1), 65535)
        self.defaultTimeout = defaultTimeout
        self.maximumRetransmissions = max(maximumRetransmissions, 0)
        self.maximumTransferDuration = maximumTransferDuration
        self.maximumConcurrentTransfers = max(maximumConcurrentTransfers, 1)
    }
}

/// The parameters of one transfer after option negotiation (RFC 2347, 2348, 2349, 7440).
public struct TFTPTransferParameters: Hashable, Sendable {
    /// Bytes per DATA block.
    public var blockSize: Int
    /// Blocks sent before waiting for an ACK.
    public var windowSize: Int
    /// Retransmission timeout.
    public var timeout: Duration
    /// The OACK's options, in the client's order; empty means no OACK is sent.
    public var acceptedOptions: [TFTPOption]

    /// Parameters given directly.
    public init(
        blockSize: Int = 512,
        windowSize: Int = 1,
        timeout: Duration = .seconds(1),
        acceptedOptions: [TFTPOption] = []
    ) {
        self.blockSize = blockSize
        self.windowSize = windowSize
        self.timeout = timeout
        self.acceptedOptions = acceptedOptions
    }

    /// Negotiates `requested` for a file of `fileSize` bytes: `blksize` 8...65464 clamped to
    /// the configured maximum, `timeout` 1...255 s, `tsize` answered with the file size,
    /// `windowsize` 1...65535 clamped to the maximum. Invalid values, repeated and unknown
    /// options are ignored and left out of the OACK.
    public init(negotiating requested: [TFTPOption], fileSize: Int, configuration: TFTPConfiguration) {
        self.init(timeout: configuration.defaultTimeout)
        var seen: Set<String> = []
        for option in requested {
            let name = option.name.lowercased()
            guard seen.insert(name).inserted, let value = Int(option.value) else { continue }
            switch name {
            case "blksize" where value >= 8:
                self.blockSize = min(value, configuration.maximumBlockSize)
                self.acceptedOptions.append(TFTPOption(name: name, value: String(self.blockSize)))
            case "timeout" where (1...255).contains(value):
                self.timeout = .seconds(value)
                self.acceptedOptions.append(TFTPOption(name: name, value: String(value)))
            case "tsize" where value >= 0:
                self.acceptedOptions.append(TFTPOption(name: name, value: String(fileSize)))
            case "windowsize" where (1...65535).contains(value):
                self.windowSize = min(value, configuration.maximumWindowSize)
                self.acceptedOptions.append(TFTPOption(name: name, value: String(self.windowSize)))
            default:
                continue
            }
        }
    }
}
