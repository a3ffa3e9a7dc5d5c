import NIOCore
import NIOHTTP1

/// How a route spreads requests over its endpoints.
public enum LoadBalancing: String, Sendable, Hashable {
    /// Each request starts at the next endpoint (per event loop).
    case roundRobin = "round_robin"
    /// The endpoint with the fewest requests in progress on this event loop; ties go round robin.
    case leastRequests = "least_requests"
}

/// Sticky sessions by cookie (ingress-nginx `affinity: cookie`): the cookie names an endpoint
/// by a hash of its address; a client without it (or whose endpoint is gone or ejected) is
/// balanced as usual and gets the cookie with the response.
public struct CookieAffinity: Sendable, Hashable {
    public var name: String
    public var path: String
    /// `Max-Age` in seconds; nil makes a session cookie.
    public var maxAge: Int?

    /// Creates an affinity policy.
    public init(name: String = "INGRESSCOOKIE", path: String = "/", maxAge: Int? = nil) {
        self.name = name
        self.path = path
        self.maxAge = maxAge
    }

    /// The cookie value naming `endpoint`: 16 hex digits of FNV-1a over `host:port`.
    static func value(for endpoint: UpstreamEndpoint) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in endpoint.description.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// This cookie's value in a request's `Cookie` headers.
    func value(in headers: HTTPHeaders) -> Substring? {
        for line in headers["cookie"] {
            for pair in line.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == self.name else { continue }
                return trimmed[trimmed.index(after: equals)...]
            }
        }
        return nil
    }

    /// The `Set-Cookie` value for `endpoint`.
    func setCookie(for endpoint: UpstreamEndpoint) -> String {
        var text = "\(self.name)=\(Self.value(for: endpoint)); Path=\(self.path); HttpOnly"
        if let maxAge = self.maxAge { text += "; Max-Age=\(maxAge)" }
        return text
    }
}

/// Per event loop: requests in progress by endpoint (least-requests) and passive ejection.
/// Endpoints that fail an active health check (``HealthChecker``) are passed in as `down`
/// and treated like ejected ones.
///
/// An endpoint whose connect fails is ejected for 1 s, doubling with each further consecutive
/// failure up to 30 s; a successful connect clears it. Ejected endpoints are tried last, so a
/// request still goes somewhere when every endpoint is ejected (that try is the recovery probe).
struct EndpointHealth {
    private struct Ejection {
        var failures: Int
        var until: NIODeadline
    }

    private var ejected: [UpstreamEndpoint: Ejection] = [:]
    private var inProgress: [UpstreamEndpoint: Int] = [:]

    var hasEjections: Bool { !self.ejected.isEmpty }

    func isEjected(_ endpoint: UpstreamEndpoint, now: NIODeadline) -> Bool {
        guard let ejection = self.ejected[endpoint] else { return false }
        return ejection.until > now
    }

    mutating func connectFailed(_ endpoint: UpstreamEndpoint, now: NIODeadline, base: TimeAmount = .seconds(1)) {
        let failures = (self.ejected[endpoint]?.failures ?? 0) + 1
        let factor = min(30, 1 << min(failures - 1, 5))
        self.ejected[endpoint] = Ejection(failures: failures, until: now + base * Int64(factor))
    }

    mutating func connectSucceeded(_ endpoint: UpstreamEndpoint) {
        if !self.ejected.isEmpty { self.ejected[endpoint] = nil }
    }

    func requestsInProgress(_ endpoint: UpstreamEndpoint) -> Int { self.inProgress[endpoint, default: 0] }

    mutating func started(_ endpoint: UpstreamEndpoint) { self.inProgress[endpoint, default: 0] += 1 }

    mutating func finished(_ endpoint: UpstreamEndpoint) {
        guard let count = self.inProgress[endpoint] else { return }
        self.inProgress[endpoint] = count > 1 ? count - 1 : nil
    }

    /// The order in which to try `endpoints`: `preferred` first when given and not ejected,
    /// then from `start` round robin (or by fewest requests in progress), ejected ones last.
    /// Returns nil when plain round robin from `start` is the answer (the common case, no array).
    func order(
        _ endpoints: [UpstreamEndpoint],
        start: Int,
        balancing: LoadBalancing,
        preferred: Int?,
        now: NIODeadline,
        down: Set<UpstreamEndpoint> = []
    ) -> [Int]? {
        if preferred == nil && balancing == .roundRobin && self.ejected.isEmpty && down.isEmpty { return nil }
        var order = (0..<endpoints.count).map { (start + $0) % endpoints.count }
        if balancing == .leastRequests {
            // Stable: ties keep the round-robin order.
            order = order.enumerated().sorted {
                let (left, right) = (
                    self.requestsInProgress(endpoints[$0.element]), self.requestsInProgress(endpoints[$1.element])
                )
                return left != right ? left < right : $0.offset < $1.offset
            }.map(\.element)
        }
        if let preferred, let position = order.firstIndex(of: preferred) {
            order.remove(at: position)
            order.insert(preferred, at: 0)
        }
        if !self.ejected.isEmpty || !down.isEmpty {
            func usable(_ index: Int) -> Bool {
                !down.contains(endpoints[index]) && !self.isEjected(endpoints[index], now: now)
            }
            let healthy = order.filter(usable)
            if healthy.count != order.count {
                order = healthy + order.filter { !usable($0) }
            }
        }
        return order
    }
}
