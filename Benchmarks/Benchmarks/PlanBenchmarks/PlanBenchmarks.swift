import Benchmark
import Foundation
import PorticoModel
import PorticoPlan

// Plan computation for the reference deployment (examples/homelab): reading, decoding and
// validating the manifests, computing the plan from them, and both together (what
// `portico plan examples/homelab` does before printing).

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

    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 3,
        maxDuration: .seconds(3),
        maxIterations: 200,
        thresholds: thresholds
    )

    Benchmark(
        "HomelabLoadAndPlan",
        configuration: configuration,
        closure: { benchmark, path in
            for _ in benchmark.scaledIterations {
                let manifests = ManifestLoader.load(paths: [path])
                blackHole(PlanBuilder.plan(for: manifests))
            }
        },
        setup: { checkedHomelabPath() }
    )

    Benchmark(
        "HomelabLoadAndValidate",
        configuration: configuration,
        closure: { benchmark, path in
            for _ in benchmark.scaledIterations {
                blackHole(ManifestLoader.load(paths: [path]))
            }
        },
        setup: { checkedHomelabPath() }
    )

    Benchmark(
        "HomelabPlan",
        configuration: configuration,
        closure: { benchmark, manifests in
            for _ in benchmark.scaledIterations {
                blackHole(PlanBuilder.plan(for: manifests))
            }
        },
        setup: { ManifestLoader.load(paths: [checkedHomelabPath()]) }
    )
}

/// `examples/homelab` of the repository (this file is
/// `Benchmarks/Benchmarks/PlanBenchmarks/PlanBenchmarks.swift`), or `$PORTICO_HOMELAB`.
/// Checked once, so that a moved example cannot turn the benchmark into planning nothing.
func checkedHomelabPath() -> String {
    var path = ProcessInfo.processInfo.environment["PORTICO_HOMELAB"] ?? ""
    if path.isEmpty {
        var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(4)
        path = (components + ["examples", "homelab"]).joined(separator: "/")
    }
    let manifests = ManifestLoader.load(paths: [path])
    precondition(manifests.files.count > 10, "no manifests found at \(path)")
    precondition(!PlanBuilder.plan(for: manifests).routeTables.isEmpty, "the homelab plan has no routes")
    return path
}
