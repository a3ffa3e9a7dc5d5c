/// The server-level rules for a new request on port 69: decode it, refuse writes and unsafe
/// names, and cap concurrent transfers. Pure; the shell then looks the file up.
public struct TFTPAdmission: Sendable {
    /// What to do with a datagram that arrived on port 69.
    public enum Decision: Hashable, Sendable {
        /// Serve this read request from a fresh port; one transfer slot is now taken and must
        /// be given back with `release()` when the transfer ends or the file is not found.
        case serve(TFTPRequest, TFTPPath)
        /// Answer with this ERROR packet (from a fresh port) and do nothing else.
        case reject(TFTPPacket)
        /// Not a request: drop it silently (no reflection).
        case ignore
    }

    /// The configuration.
    public let configuration: TFTPConfiguration
    /// Transfers in progress.
    public private(set) var activeTransfers = 0

    /// Admission with `configuration`'s limits.
    public init(configuration: TFTPConfiguration) {
        self.configuration = configuration
    }

    /// Decides about one datagram received on port 69.
    public mutating func admit(_ datagram: some Collection<UInt8>) -> Decision {
        let request: TFTPRequest
        do {
            switch try TFTPPacket(decoding: datagram) {
            case .readRequest(let read):
                request = read
            case .writeRequest:
                return .reject(.error(.accessViolation, message: "Read-only server"))
            case .data, .acknowledgement, .error, .optionAcknowledgement:
                return .ignore
            }
        } catch {
            let opcode = Array(datagram.prefix(2))
            return opcode == [0, 1] || opcode == [0, 2]
                ? .reject(.error(.illegalOperation, message: "Malformed request")) : .ignore
        }
        guard request.mode != .mail else {
            return .reject(.error(.illegalOperation, message: "Mail mode not supported"))
        }
        let path: TFTPPath
        do {
            path = try TFTPPath(sanitizing: request.fileName)
        } catch {
            return .reject(error.errorPacket)
        }
        guard self.activeTransfers < self.configuration.maximumConcurrentTransfers else {
            return .reject(.error(.notDefined, message: "Server busy, try again later"))
        }
        self.activeTransfers += 1
        return .serve(request, path)
    }

    /// A transfer admitted by `admit` is over.
    public mutating func release() {
        precondition(self.activeTransfers > 0, "release() without a served request")
        self.activeTransfers -= 1
    }
}

/// Netascii conversion for `netascii` mode (RFC 764): LF becomes CR LF, CR becomes CR NUL.
public enum TFTPNetascii {
    /// The bytes to send for a text file in netascii mode.
    public static func encode(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.underestimatedCount)
        for byte in bytes {
            switch byte {
            case 0x0A: result += [0x0D, 0x0A]
            case 0x0D: result += [0x0D, 0x00]
            default: result.append(byte)
            }
        }
        return result
    }
}
