// swift-tools-version:6.1
// Microbenchmarks for Portico (package-benchmark). A separate package so that the main
// package does not depend on the benchmark tooling. Run from this directory:
//   swift package benchmark
// See docs/benchmarks.md for the thresholds and how to update them.
import PackageDescription

let package = Package(
    name: "portico-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "portico", path: ".."),
        // The MallocInterposer trait gives malloc counts without jemalloc; naming the traits
        // also turns off the default RuntimeInterposer (ARC counts on Linux with Swift 6.3),
        // which we do not measure.
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "RouteLookupBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PorticoRouting", package: "portico"),
            ],
            path: "Benchmarks/RouteLookupBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "PlanBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PorticoModel", package: "portico"),
                .product(name: "PorticoPlan", package: "portico"),
            ],
            path: "Benchmarks/PlanBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "AllocationBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PorticoAllocation", package: "portico"),
            ],
            path: "Benchmarks/AllocationBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "HTTPBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PorticoHTTP", package: "portico"),
                .product(name: "PorticoRouting", package: "portico"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/HTTPBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
