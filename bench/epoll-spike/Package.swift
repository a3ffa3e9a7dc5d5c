// swift-tools-version:6.0
// An experiment, not part of Portico: how little user CPU an HTTP/1.1 keep-alive reverse proxy
// written in Swift spends per request when it owns its epoll loop instead of going through
// NIO's channel pipeline. See docs/benchmarks.md ("The I/O core experiment").
import PackageDescription

let package = Package(
    name: "epoll-spike",
    targets: [
        .target(name: "CEpoll"),
        .executableTarget(name: "EpollSpike", dependencies: ["CEpoll"]),
    ],
    swiftLanguageModes: [.v5]
)
