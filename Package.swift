// swift-tools-version:6.0
import PackageDescription

let strictConcurrency: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "portico",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "portico", targets: ["portico"]),
        // Libraries for the benchmarks package (Benchmarks/) and embedders.
        .library(name: "PorticoAllocation", targets: ["PorticoAllocation"]),
        .library(name: "PorticoRouting", targets: ["PorticoRouting"]),
        .library(name: "PorticoModel", targets: ["PorticoModel"]),
        .library(name: "PorticoPlan", targets: ["PorticoPlan"]),
        .library(name: "PorticoHTTP", targets: ["PorticoHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.36.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.0"),
        // Client certificate chains verified by Portico (auth-tls-verify-depth) and the
        // self-signed default certificate.
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // Pure: resources decoded from YAML with source positions, and their validation.
        .target(
            name: "PorticoModel",
            dependencies: [
                "PorticoAllocation",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictConcurrency
        ),
        // Pure: the Ingress route table (host + path -> target), generic over its target.
        .target(name: "PorticoRouting", swiftSettings: strictConcurrency),
        // Pure: MetalLB-compatible load-balancer IP allocation.
        .target(name: "PorticoAllocation", swiftSettings: strictConcurrency),
        // Pure: DHCP and TFTP codecs and state machines, proxyDHCP answers, boot inventory.
        .target(
            name: "PorticoNetboot",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: strictConcurrency
        ),
        // Pure VRRPv3 core (codec, state machine, placement) + Linux shell (raw socket, netlink, ARP/NA).
        .target(name: "PorticoVIP", dependencies: ["PorticoAllocation"], swiftSettings: strictConcurrency),
        // Pure: manifests -> plan (allocations, listeners, routes, diagnostics).
        .target(
            name: "PorticoPlan",
            dependencies: ["PorticoModel", "PorticoRouting", "PorticoAllocation", "PorticoNetboot", "PorticoVIP"],
            swiftSettings: strictConcurrency
        ),
        // NIO: the HTTP/1.1, HTTP/2 and TLS ingress data plane.
        .target(
            name: "PorticoHTTP",
            dependencies: [
                "CPorticoEpoll",
                "PorticoRouting",
                "PorticoL4",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictConcurrency
        ),
        // The daemon: reconciles the running parts to the plan; admin endpoint and metrics.
        .target(
            name: "PorticoRuntime",
            dependencies: [
                "PorticoModel",
                "PorticoPlan",
                "PorticoHTTP",
                "PorticoL4",
                "PorticoRouting",
                "PorticoNetboot",
                "PorticoVIP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictConcurrency
        ),
        // NIO: TCP and UDP forwarding with PROXY protocol.
        // The Linux datagram calls Swift's Glibc module does not import (sendmmsg, UDP_SEGMENT).
        .target(name: "CPorticoUDP"),
        // epoll, eventfd and accept4 for the HTTP fast lane's own event loop.
        .target(name: "CPorticoEpoll"),
        .target(
            name: "PorticoL4",
            dependencies: [
                "CPorticoUDP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictConcurrency
        ),
        .executableTarget(
            name: "portico",
            dependencies: [
                "PorticoModel",
                "PorticoPlan",
                "PorticoNetboot",
                "PorticoRuntime",
                "PorticoHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictConcurrency
        ),
        .testTarget(name: "PorticoModelTests", dependencies: ["PorticoModel"]),
        .testTarget(name: "PorticoRoutingTests", dependencies: ["PorticoRouting"]),
        .testTarget(name: "PorticoAllocationTests", dependencies: ["PorticoAllocation"]),
        .testTarget(
            name: "PorticoNetbootTests",
            dependencies: [
                "PorticoNetboot",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(name: "PorticoVIPTests", dependencies: ["PorticoVIP"]),
        .testTarget(
            name: "PorticoRuntimeTests",
            dependencies: [
                "PorticoRuntime", "PorticoHTTP", "PorticoL4", "PorticoModel", "PorticoPlan", "PorticoNetboot",
            ]
        ),
        .testTarget(
            name: "PorticoL4Tests",
            dependencies: [
                "PorticoL4",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(name: "PorticoPlanTests", dependencies: ["PorticoPlan", "PorticoModel", "PorticoNetboot", "PorticoVIP"]),
        .testTarget(
            name: "PorticoHTTPTests",
            dependencies: [
                "PorticoHTTP",
                "PorticoL4",
                "PorticoRouting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "portico",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
