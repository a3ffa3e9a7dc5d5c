import Benchmark
import PorticoAllocation

// Allocation of 10,000 LoadBalancer Services from a /16 pool: one in twenty requests a
// specific address, one in ten shares its address (ten Services per sharing key, distinct
// ports), one in twenty names a second pool (autoAssign false), the rest are allocated
// automatically. First run with an empty lock, then the
// re-run with the lock of the first run (every allocation kept: the steady state of
// `portico plan --state-dir`).

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

    // One iteration, no warm-up: a first run takes seconds, as many as the rest together
    // (automatic allocation scans the pool from its first address for every Service).
    Benchmark(
        "Allocate10000EmptyLock",
        configuration: Benchmark.Configuration(
            metrics: [.wallClock, .mallocCountTotal, .throughput],
            warmupIterations: 0,
            maxDuration: .seconds(2),
            maxIterations: 5,
            thresholds: thresholds
        ),
        closure: { benchmark, fixture in
            for _ in benchmark.scaledIterations {
                blackHole(Allocator.allocate(services: fixture.services, pools: fixture.pools))
            }
        },
        setup: { AllocationFixture(withLock: false) }
    )

    Benchmark(
        "Allocate10000PreviousLock",
        configuration: Benchmark.Configuration(
            metrics: [.wallClock, .mallocCountTotal, .throughput],
            warmupIterations: 1,
            maxDuration: .seconds(3),
            maxIterations: 100,
            thresholds: thresholds
        ),
        closure: { benchmark, fixture in
            for _ in benchmark.scaledIterations {
                blackHole(
                    Allocator.allocate(services: fixture.services, pools: fixture.pools, previous: fixture.lock)
                )
            }
        },
        setup: { AllocationFixture(withLock: true) }
    )
}

struct AllocationFixture {
    static let serviceCount = 10_000

    let pools = [
        AddressPool(name: "main", addresses: ["10.1.0.0/16"]),
        // Not used automatically: only by Services naming it.
        AddressPool(name: "dmz", addresses: ["192.168.100.0/23"], autoAssign: false),
    ]
    let services: [ServiceRequest]
    /// The lock written by the first run (empty unless asked for).
    let lock: AllocationLock

    init(withLock: Bool) {
        var services: [ServiceRequest] = []
        for index in 0..<Self.serviceCount {
            var service = ServiceRequest(
                namespace: "team-\(index % 50)",
                name: "svc-\(index)",
                labels: ["app": "app-\(index)"],
                selector: ["app": "app-\(index)"],
                ports: [ServicePort(.tcp, 80), ServicePort(.tcp, 443)]
            )
            switch index % 20 {
            case 0:
                // 500 specific addresses from the top of the pool.
                let slot = index / 20
                service.requestedAddresses = .addresses(["10.1.\(250 + slot / 250).\(slot % 250 + 1)"])
            case 3, 13:
                // Ten Services per key (the same hundred), each on its own port.
                service.sharingKey = "shared-\(index / 100)"
                service.ports = [ServicePort(.tcp, 10_000 + index % 100)]
            case 7:
                // 500 Services naming the second pool.
                service.requestedPool = "dmz"
            default:
                break
            }
            services.append(service)
        }
        self.services = services
        guard withLock else {
            lock = AllocationLock()
            return
        }
        let first = Allocator.allocate(services: services, pools: pools)
        precondition(
            first.allocations.count == Self.serviceCount && first.failures.isEmpty,
            "fixture: \(first.allocations.count) allocations, \(first.failures.count) failures"
        )
        lock = first.lock
        let again = Allocator.allocate(services: services, pools: pools, previous: lock)
        precondition(again.lock == lock && again.releases.isEmpty, "fixture: the re-run moved allocations")
    }
}
