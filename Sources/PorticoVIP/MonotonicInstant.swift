/// A point in monotonic time, as an offset from an arbitrary origin.
///
/// The state machine never reads a clock: the shell passes `now` (from `CLOCK_MONOTONIC`)
/// into every event, and tests pass whatever instants they like.
public struct MonotonicInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The time elapsed since the origin.
    public var offset: Duration

    /// The instant `offset` after the origin.
    public init(_ offset: Duration) {
        self.offset = offset
    }

    /// The origin.
    public static let zero = MonotonicInstant(.zero)

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool { lhs.offset < rhs.offset }

    public static func + (lhs: MonotonicInstant, rhs: Duration) -> MonotonicInstant {
        MonotonicInstant(lhs.offset + rhs)
    }

    public static func - (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Duration { lhs.offset - rhs.offset }

    public var description: String { "T+\(offset)" }
}
