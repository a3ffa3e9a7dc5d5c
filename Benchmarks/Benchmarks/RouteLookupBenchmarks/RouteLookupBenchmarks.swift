import Benchmark
import PorticoRouting

// Route lookup: a table of N hosts x 5 paths, looked up with a set of 1,024 requests (hits
// on exact and wildcard hosts, Exact and Prefix paths, ports and upper case in the Host
// header, query strings, and misses); one iteration looks up every request once. The same
// mix at 100 and 10,000 hosts shows that the cost does not grow with the number of hosts
// (docs/architecture.md).

let benchmarks: @Sendable () -> Void = {
    // Tolerances for `swift package benchmark thresholds check` against Thresholds/ (p90).
    // Shared 2-core machines vary by 20-30% between runs, so times and rates fail only on
    // large changes; malloc counts are deterministic and fail at 5%. Benchmark names have no
    // spaces: `thresholds update` writes them with `_` in the file names, `thresholds check`
    // (package-benchmark 1.38.1) looks for them as they are.
    let thresholds: [BenchmarkMetric: BenchmarkThresholds] = [
        .wallClock: BenchmarkThresholds(relative: [.p90: 50.0]),
        .throughput: BenchmarkThresholds(relative: [.p90: 50.0]),
        .mallocCountTotal: BenchmarkThresholds(relative: [.p90: 5.0]),
    ]

    let lookup = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 10,
        maxDuration: .seconds(3),
        maxIterations: 2_000,
        thresholds: thresholds
    )

    Benchmark(
        "Lookup10000Hosts",
        configuration: lookup,
        closure: { _, fixture in fixture.lookUpAll() },
        setup: { RouteFixture(hostCount: 10_000) }
    )

    Benchmark(
        "Lookup100Hosts",
        configuration: lookup,
        closure: { _, fixture in fixture.lookUpAll() },
        setup: { RouteFixture(hostCount: 100) }
    )

    Benchmark(
        "Build10000Hosts",
        configuration: Benchmark.Configuration(
            metrics: [.wallClock, .mallocCountTotal, .throughput],
            warmupIterations: 1,
            maxDuration: .seconds(3),
            maxIterations: 50,
            thresholds: thresholds
        ),
        closure: { _, rules in
            blackHole(RouteTable(rules: rules, defaultTarget: nil))
        },
        setup: { RouteFixture.rules(hostCount: 10_000) }
    )
}

/// A route table and the requests to look up in it.
struct RouteFixture {
    /// One request: the raw Host header (nil: none) and the request target.
    struct Request {
        var host: String?
        var path: String
    }

    let table: RouteTable<Int>
    let requests: [Request]
    /// How many requests found a route (checked once, so the fixture cannot go stale quietly).
    let hits: Int

    init(hostCount: Int) {
        table = RouteTable(rules: Self.rules(hostCount: hostCount), defaultTarget: nil)
        requests = Self.requests(hostCount: hostCount, count: 1_024)
        var hits = 0
        for request in requests where table.lookup(host: request.host?[...], path: request.path[...]) != nil {
            hits += 1
        }
        self.hits = hits
        precondition(hits > requests.count / 2 && hits < requests.count, "fixture: \(hits) hits")
    }

    /// Looks up every request once.
    func lookUpAll() {
        for request in requests {
            blackHole(table.lookup(host: request.host?[...], path: request.path[...]))
        }
    }

    /// Every tenth host is a wildcard (`*.zone-N.example.org`), the others exact
    /// (`app-N.example.com`). Even hosts have a catch-all `/`, odd hosts do not, so a request
    /// to an odd host can miss on its path.
    static func rules(hostCount: Int) -> [RouteRule<Int>] {
        var rules: [RouteRule<Int>] = []
        rules.reserveCapacity(hostCount * 5)
        for index in 0..<hostCount {
            let host = index % 10 == 0 ? HostPattern("*.zone-\(index).example.org") : HostPattern(hostName(index))
            let paths: [(String, PathType)] =
                index % 2 == 0
                ? [
                    ("/", .prefix), ("/api/", .prefix), ("/api/v1/users", .exact), ("/static", .prefix),
                    ("/healthz", .exact),
                ]
                : [
                    ("/app", .prefix), ("/app/api", .implementationSpecific), ("/login", .exact), ("/static/", .prefix),
                    ("/metrics", .exact),
                ]
            for (path, pathType) in paths {
                rules.append(RouteRule(host: host, path: path, pathType: pathType, target: rules.count))
            }
        }
        return rules
    }

    static func hostName(_ index: Int) -> String { "app-\(index).example.com" }

    /// `count` requests spread over all hosts (a fixed pseudo-random sequence): about three in
    /// four hit a route, the rest miss on the host or on the path.
    static func requests(hostCount: Int, count: Int) -> [Request] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var requests: [Request] = []
        for _ in 0..<count {
            var index = next(hostCount)
            if index % 10 == 0 { index += 1 }  // wildcard hosts are asked for in case 3
            let host = hostName(index)
            let hasRoot = index % 2 == 0
            switch next(8) {
            case 0:
                requests.append(Request(host: host, path: hasRoot ? "/api/v1/users" : "/login"))
            case 1:
                requests.append(
                    Request(host: host, path: hasRoot ? "/api/v1/users/42/orders?page=2" : "/app/api/v2/items")
                )
            case 2:
                // A port and upper case in the Host header.
                requests.append(Request(host: host.uppercased() + ":443", path: "/static/css/site.css"))
            case 3:
                let zone = next(max(hostCount / 10, 1)) * 10
                requests.append(Request(host: "tenant\(next(1_000)).zone-\(zone).example.org", path: "/api/items"))
            case 4:
                requests.append(Request(host: host, path: hasRoot ? "/healthz" : "/metrics"))
            case 5:
                // Miss: unknown host.
                requests.append(Request(host: "unknown-\(next(1_000_000)).example.net", path: "/"))
            case 6:
                // Miss on odd hosts (no catch-all); a hit on `/` for even hosts.
                requests.append(Request(host: host, path: "/nothing/here"))
            default:
                // No Host header, no rule without a host: a miss.
                requests.append(Request(host: nil, path: "/api/v1/users"))
            }
        }
        return requests
    }
}
