/// Round-robin choice among a listener's endpoints, with fallback order on failure.
///
/// Each connection or flow takes the next starting point; its attempts then walk the list
/// from there, so a failed endpoint is skipped and every endpoint is tried at most once.
struct EndpointRotation: Sendable, Hashable {
    private var next = 0

    init() {}

    /// The starting index for a new connection among `count` endpoints (`nil` when there are none).
    mutating func start(count: Int) -> Int? {
        guard count > 0 else { return nil }
        let start = self.next % count
        self.next = (start + 1) % count
        return start
    }

    /// The index of the `attempt`-th try (0-based) from `start`, or `nil` once every endpoint was tried.
    static func index(start: Int, attempt: Int, count: Int) -> Int? {
        guard attempt < count else { return nil }
        return (start + attempt) % count
    }
}
