/// A failed system call of the Linux shell.
public struct LinuxSocketError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The call that failed, e.g. `setsockopt(IP_ADD_MEMBERSHIP)`.
    public var operation: String
    /// The errno.
    public var code: Int32

    /// An error from its fields.
    public init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(operation) failed with errno \(code)" }
}
