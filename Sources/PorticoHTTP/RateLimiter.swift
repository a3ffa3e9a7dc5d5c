import NIOConcurrencyHelpers
import NIOCore

/// Per-client limits of a route (ingress-nginx `limit-rps`, `limit-rpm`, `limit-connections`).
public struct RateLimit: Sendable, Hashable {
    /// Limits with the same id share their counters (one id per Ingress, as ingress-nginx
    /// has one zone per Ingress).
    public var id: String
    /// Requests per second per client address; bursts of 5x the rate pass at once.
    public var requestsPerSecond: Int?
    /// Requests per minute per client address; bursts of 5x the per-minute rate pass at once.
    public var requestsPerMinute: Int?
    /// Requests in progress at once per client address.
    public var connections: Int?
    /// Clients exempt from the limits (ingress-nginx `limit-whitelist`).
    public var exempt: [IPAddressRange]

    /// Creates a limit.
    public init(
        id: String,
        requestsPerSecond: Int? = nil,
        requestsPerMinute: Int? = nil,
        connections: Int? = nil,
        exempt: [IPAddressRange] = []
    ) {
        self.id = id
        self.requestsPerSecond = requestsPerSecond
        self.requestsPerMinute = requestsPerMinute
        self.connections = connections
        self.exempt = exempt
    }

    /// ingress-nginx's burst multiplier.
    static let burstMultiplier = 5
}

/// The counters of every ``RateLimit`` of an engine, by client address, shared by all event
/// loops (one lock per limited request; unlimited routes never touch it).
///
/// Token buckets: a client starts with `burst` tokens, each request takes one, tokens come back
/// at the configured rate; an empty bucket means 429. Buckets that would be full again are
/// forgotten by a sweep (at most once a second) once the table holds ``maxClients`` entries, so memory stays bounded
/// under a scan from many addresses (if the table is still full, new clients are limited as
/// one shared "overflow" client rather than growing without bound).
final class RateLimiter: Sendable {
    enum Verdict: Equatable {
        case allowed
        case tooManyRequests(String)
        case tooManyConnections
    }

    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    private struct Client: Hashable {
        let limit: String
        let address: [UInt8]
    }

    private struct State {
        var perSecond: [Client: Bucket] = [:]
        var perMinute: [Client: Bucket] = [:]
        var inProgress: [Client: Int] = [:]
        /// When the table was last swept: a full table is swept at most once a second, so an
        /// address scan costs one pass per second, not one per request.
        var lastSweep: NIODeadline = .uptimeNanoseconds(0)
    }

    let maxClients: Int
    private let state = NIOLockedValueBox(State())

    init(maxClients: Int = 100_000) {
        self.maxClients = maxClients
    }

    /// Takes a token of each configured rate and, with `limit-connections`, a slot that the
    /// caller gives back with ``release(_:address:)`` when the request ends.
    func admit(_ limit: RateLimit, address: [UInt8], now: NIODeadline = .now()) -> Verdict {
        if limit.exempt.contains(where: { $0.contains(address) }) { return .allowed }
        return self.state.withLockedValue { state in
            var client = Client(limit: limit.id, address: address)
            if state.perSecond.count + state.perMinute.count + state.inProgress.count >= self.maxClients {
                if now - state.lastSweep >= .seconds(1) {
                    state.lastSweep = now
                    Self.sweep(&state, now: now)
                }
                if state.perSecond.count + state.perMinute.count + state.inProgress.count >= self.maxClients {
                    client = Client(limit: limit.id, address: [])
                }
            }
            if let connections = limit.connections, state.inProgress[client, default: 0] >= connections {
                return .tooManyConnections
            }
            if let rate = limit.requestsPerSecond,
                !Self.take(&state.perSecond, client, rate: Double(rate), per: 1, now: now)
            {
                return .tooManyRequests("\(rate) requests per second")
            }
            if let rate = limit.requestsPerMinute,
                !Self.take(&state.perMinute, client, rate: Double(rate), per: 60, now: now)
            {
                return .tooManyRequests("\(rate) requests per minute")
            }
            if limit.connections != nil {
                state.inProgress[client, default: 0] += 1
            }
            return .allowed
        }
    }

    /// Gives back the in-progress slot taken by ``admit(_:address:now:)``.
    func release(_ limit: RateLimit, address: [UInt8]) {
        self.state.withLockedValue { state in
            for client in [Client(limit: limit.id, address: address), Client(limit: limit.id, address: [])] {
                guard let count = state.inProgress[client] else { continue }
                state.inProgress[client] = count > 1 ? count - 1 : nil
                return
            }
        }
    }

    /// Clients currently tracked (for tests and metrics).
    var trackedClients: Int {
        self.state.withLockedValue { $0.perSecond.count + $0.perMinute.count + $0.inProgress.count }
    }

    private static func take(
        _ buckets: inout [Client: Bucket],
        _ client: Client,
        rate: Double,
        per seconds: Double,
        now: NIODeadline
    ) -> Bool {
        let capacity = rate * Double(RateLimit.burstMultiplier)
        var bucket = buckets[client] ?? Bucket(tokens: capacity, updated: now)
        let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
        bucket.tokens = min(capacity, bucket.tokens + elapsed * rate / seconds)
        bucket.updated = now
        guard bucket.tokens >= 1 else {
            buckets[client] = bucket
            return false
        }
        bucket.tokens -= 1
        buckets[client] = bucket
        return true
    }

    /// Forgets buckets that have refilled completely (they behave like absent ones). The
    /// per-minute table is swept with the longest refill time a bucket can need.
    private static func sweep(_ state: inout State, now: NIODeadline) {
        let fullAfterSeconds = Double(RateLimit.burstMultiplier)
        state.perSecond = state.perSecond.filter { _, bucket in
            Double((now - bucket.updated).nanoseconds) / 1e9 < fullAfterSeconds
        }
        state.perMinute = state.perMinute.filter { _, bucket in
            Double((now - bucket.updated).nanoseconds) / 1e9 < fullAfterSeconds * 60
        }
    }
}
