/// How a served transfer ended, as the server logs and counts it: the state machine's
/// outcome, or a reason outside it.
enum TFTPTransferResult: Hashable, Sendable, CustomStringConvertible {
    /// The state machine ended the transfer.
    case outcome(TFTPTransferOutcome)
    /// Reading the file failed or it shrank during the transfer; the client got ERROR 0.
    case readFailed(errno: Int32)
    /// The transfer socket could not be opened or failed.
    case socketFailed(String)
    /// The server stopped before the transfer ended.
    case shutdown

    /// The metric dimension of a result.
    enum Kind: String, CaseIterable, Hashable, Sendable {
        case completed
        case abortedByClient = "aborted_by_client"
        case timedOut = "timed_out"
        case protocolError = "protocol_error"
        case readFailed = "read_failed"
        case socketFailed = "socket_failed"
        case shutdown
    }

    var kind: Kind {
        switch self {
        case .outcome(.completed): .completed
        case .outcome(.abortedByClient): .abortedByClient
        case .outcome(.timedOut): .timedOut
        case .outcome(.protocolError): .protocolError
        case .readFailed: .readFailed
        case .socketFailed: .socketFailed
        case .shutdown: .shutdown
        }
    }

    var description: String {
        switch self {
        case .outcome(.abortedByClient(let code, let message)):
            "aborted by client (error \(code.rawValue): \(message))"
        case .outcome(.protocolError(let code)):
            "protocol error (sent error \(code.rawValue))"
        case .readFailed(let errno):
            "read failed (errno \(errno))"
        case .socketFailed(let reason):
            "socket failed (\(reason))"
        default:
            String(self.kind.rawValue.map { $0 == "_" ? " " : $0 })
        }
    }
}
