import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Testing

@testable import PorticoNetboot

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A temporary TFTP root: small.txt, exact.bin (1024 bytes, a multiple of 512), big.bin
/// (3 MiB + 123 random bytes), sub/ (a directory), inside -> small.txt, escape -> /etc/passwd,
/// escape-relative -> ../outside.txt, and outside.txt next to the root.
struct TFTPTestTree: Sendable {
    let base: String
    var root: String { self.base + "/root" }
    let small = Array("hello from portico\n".utf8)
    let exact: [UInt8]
    let big: [UInt8]

    init() throws {
        var template = Array("/tmp/portico-tftp-server-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        self.base = try #require(created.map { String(cString: $0) })
        var generator = SystemRandomNumberGenerator()
        self.exact = Self.randomBytes(1024, using: &generator)
        self.big = Self.randomBytes(3 << 20 + 123, using: &generator)
        let files = FileManager.default
        try files.createDirectory(atPath: self.root + "/sub", withIntermediateDirectories: true)
        try Data(self.small).write(to: URL(fileURLWithPath: self.root + "/small.txt"))
        try Data(self.exact).write(to: URL(fileURLWithPath: self.root + "/exact.bin"))
        try Data(self.big).write(to: URL(fileURLWithPath: self.root + "/big.bin"))
        try Data("secret\n".utf8).write(to: URL(fileURLWithPath: self.base + "/outside.txt"))
        try files.createSymbolicLink(atPath: self.root + "/inside", withDestinationPath: "small.txt")
        try files.createSymbolicLink(atPath: self.root + "/escape", withDestinationPath: "/etc/passwd")
        try files.createSymbolicLink(atPath: self.root + "/escape-relative", withDestinationPath: "../outside.txt")
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.base)
    }

    /// A path for a client's download, inside the temporary directory but outside the root.
    func download(_ name: String) -> String {
        self.base + "/download-" + name
    }

    static func randomBytes(_ count: Int, using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                var word = generator.next()
                let length = min(8, raw.count - offset)
                withUnsafeBytes(of: &word) {
                    raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: length)
                }
                offset += length
            }
        }
        return bytes
    }
}

/// A running TFTP server on 127.0.0.1 and an ephemeral port, over a fresh test tree.
struct TFTPServerFixture: Sendable {
    let server: TFTPServer
    let port: UInt16
    let tree: TFTPTestTree
    let metrics: TestMetricsFactory

    static func with(
        limits: TFTPConfiguration = TFTPConfiguration(),
        virtualFiles: (any TFTPVirtualFileProvider)? = nil,
        _ body: (TFTPServerFixture) async throws -> Void
    ) async throws {
        let tree = try TFTPTestTree()
        defer { tree.remove() }
        let metrics = TestMetricsFactory()
        var logger = Logger(label: "portico.tftp.test")
        logger.logLevel = .warning
        let server = TFTPServer(
            configuration: .init(
                host: "127.0.0.1",
                port: 0,
                root: tree.root,
                limits: limits,
                virtualFiles: virtualFiles
            ),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            metricsFactory: metrics
        )
        let address = try await server.start()
        let fixture = TFTPServerFixture(
            server: server,
            port: UInt16(try #require(address.port)),
            tree: tree,
            metrics: metrics
        )
        do {
            try await body(fixture)
        } catch {
            await server.stop(gracePeriod: .zero)
            throw error
        }
        await server.stop(gracePeriod: .zero)
    }

    /// Waits until no transfer is in progress (the server ends them after the final ACK).
    func waitUntilIdle(timeout: Duration = .seconds(5)) async throws {
        let deadline = ContinuousClock.now + timeout
        while await self.server.activeTransferCount() > 0 {
            guard ContinuousClock.now < deadline else {
                Issue.record("transfers still active after \(timeout)")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// A blocking IPv4 UDP socket on 127.0.0.1 (or the wildcard) for crafted packets.
final class TestUDPSocket {
    let descriptor: CInt
    let port: UInt16

    init(wildcard: Bool = false) throws {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_DGRAM, 0)
        #endif
        try #require(descriptor >= 0)
        self.descriptor = descriptor
        var on: CInt = 1
        setsockopt(descriptor, SOL_SOCKET, SO_BROADCAST, &on, socklen_t(MemoryLayout<CInt>.size))
        var address = Self.address(wildcard ? 0 : 0x7F00_0001, port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.port = UInt16(bigEndian: address.sin_port)
    }

    deinit {
        close(self.descriptor)
    }

    /// Sends `bytes` to 127.0.0.1:`port`.
    func send(_ bytes: [UInt8], to port: UInt16) {
        var address = Self.address(0x7F00_0001, port: port)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(
                        self.descriptor,
                        buffer.baseAddress,
                        buffer.count,
                        0,
                        $0,
                        socklen_t(MemoryLayout<sockaddr_in>.size)
                    )
                }
            }
        }
        #expect(sent == bytes.count)
    }

    func send(_ packet: TFTPPacket, to port: UInt16) {
        self.send(packet.encoded(), to: port)
    }

    /// The next datagram and its source port, or `nil` after `timeout`.
    func receive(timeout: Duration = .seconds(3)) -> (bytes: [UInt8], port: UInt16)? {
        var descriptor = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        )
        guard poll(&descriptor, 1, milliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(self.descriptor, raw.baseAddress, raw.count, 0, $0, &length)
                }
            }
        }
        guard count >= 0 else { return nil }
        return (Array(buffer.prefix(count)), UInt16(bigEndian: address.sin_port))
    }

    /// The next datagram decoded as TFTP.
    func receivePacket(timeout: Duration = .seconds(3)) throws -> (packet: TFTPPacket, port: UInt16)? {
        guard let (bytes, port) = self.receive(timeout: timeout) else { return nil }
        return (try TFTPPacket(decoding: bytes), port)
    }

    private static func address(_ host: UInt32, port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = host.bigEndian
        return address
    }
}

/// An external TFTP client binary, and running it.
enum ExternalClient {
    static let atftp = Self.find("atftp")
    static let tftpHPA = Self.find("tftp")
    static let curl = Self.find("curl")

    /// The executable's path, or `nil` (printing why) when it is not installed.
    static func find(_ name: String) -> String? {
        for directory in ["/usr/bin", "/usr/local/bin", "/bin"] where access("\(directory)/\(name)", X_OK) == 0 {
            return "\(directory)/\(name)"
        }
        print("\(name) is not installed (apt-get install -y atftp tftp-hpa curl): its tests are skipped")
        return nil
    }

    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs `executable` with `arguments`, killing it after `timeout`.
    static func run(
        _ executable: String,
        _ arguments: [String],
        timeout: Duration = .seconds(30)
    ) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            let pid = process.processIdentifier
            Task {
                try await Task.sleep(for: timeout)
                if process.isRunning { kill(pid, SIGKILL) }
            }
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Result(status: process.terminationStatus, output: output)
    }
}

/// Whether the host has an IPv4 default route (a limited broadcast needs one to leave).
func hasIPv4DefaultRoute() -> Bool {
    guard let table = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8) else { return false }
    return table.split(separator: "\n").dropFirst().contains {
        $0.split(separator: "\t").dropFirst().first == "00000000"
    }
}

/// Counters and gauges by `label` and dimensions, for checking what the servers count.
final class TestMetricsFactory: MetricsFactory, @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Int64] = [:]

    /// The value of `label` with `dimensions` (0 when never touched).
    func value(_ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        self.lock.withLock { self.values[Self.key(label, dimensions)] ?? 0 }
    }

    fileprivate func add(_ key: String, _ amount: Int64, replacing: Bool = false) {
        self.lock.withLock { self.values[key] = (replacing ? 0 : self.values[key] ?? 0) + amount }
    }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        Handler(factory: self, key: Self.key(label, dimensions))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        Handler(factory: self, key: Self.key(label, dimensions))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        Handler(factory: self, key: Self.key(label, dimensions))
    }

    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    private final class Handler: CounterHandler, RecorderHandler, TimerHandler, @unchecked Sendable {
        let factory: TestMetricsFactory
        let key: String

        init(factory: TestMetricsFactory, key: String) {
            self.factory = factory
            self.key = key
        }

        func increment(by amount: Int64) { self.factory.add(self.key, amount) }
        func reset() { self.factory.add(self.key, 0, replacing: true) }
        func record(_ value: Int64) { self.factory.add(self.key, value, replacing: true) }
        func record(_ value: Double) { self.factory.add(self.key, Int64(value), replacing: true) }
        func recordNanoseconds(_ duration: Int64) { self.factory.add(self.key, 1) }
    }
}
