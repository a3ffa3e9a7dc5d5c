#if os(Linux)
import Glibc

/// `CLOCK_MONOTONIC`.
public final class SystemMonotonicClock: MonotonicClock {
    /// The system clock.
    public init() {}

    public func now() -> MonotonicInstant {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return MonotonicInstant(.seconds(time.tv_sec) + .nanoseconds(time.tv_nsec))
    }
}
#endif
