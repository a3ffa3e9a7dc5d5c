#if os(Linux)
import Foundation
import Glibc
import PorticoVIP
import Testing

/// Two network namespaces joined by a veth pair, created for one test and deleted after it.
/// Needs root (CAP_SYS_ADMIN, CAP_NET_RAW, CAP_NET_ADMIN) and `ip`.
final class NamespacePair {
    let names: [String]
    private(set) var ready = false

    /// Why the namespace tests cannot run here, or nil.
    static var skipReason: String? {
        if geteuid() != 0 { return "needs root to create network namespaces (running as uid \(geteuid()))" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
            && !FileManager.default.isExecutableFile(atPath: "/sbin/ip")
            && !FileManager.default.isExecutableFile(atPath: "/usr/bin/ip")
        {
            return "needs iproute2's `ip`"
        }
        return nil
    }

    init() throws {
        let suffix = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        names = ["pvip-a-\(suffix)", "pvip-b-\(suffix)"]
        let script = """
            set -e
            ip netns add \(names[0]); ip netns add \(names[1])
            ip link add vrrp0 netns \(names[0]) type veth peer name vrrp1 netns \(names[1])
            ip -n \(names[0]) addr add 10.99.0.1/24 dev vrrp0
            ip -n \(names[1]) addr add 10.99.0.2/24 dev vrrp1
            ip -n \(names[0]) -6 addr add fe80::1/64 dev vrrp0 nodad
            ip -n \(names[1]) -6 addr add fe80::2/64 dev vrrp1 nodad
            ip -n \(names[0]) link set vrrp0 up; ip -n \(names[1]) link set vrrp1 up
            ip -n \(names[0]) link set lo up; ip -n \(names[1]) link set lo up
            """
        _ = try Self.shell(script)
        ready = true
    }

    deinit {
        _ = try? Self.shell("ip netns del \(names[0]); ip netns del \(names[1])")
    }

    /// Runs `body` on a fresh thread that entered namespace `index`: sockets opened there stay
    /// in that namespace after the thread ends, and no shared thread changes namespace.
    func inside<Value>(_ index: Int, _ body: @escaping () throws -> Value) throws -> Value {
        let box = ResultBox<Value>()
        box.body = body
        let path = "/var/run/netns/\(names[index])"
        let thread = Thread {
            let descriptor = open(path, O_RDONLY)
            if descriptor < 0 || enterNetworkNamespace(descriptor) != 0 {
                box.result = .failure(LinuxSocketError("setns(\(path))", code: errno))
            } else {
                box.result = Result { try box.body!() }
            }
            if descriptor >= 0 { close(descriptor) }
            box.done.signal()
        }
        thread.start()
        box.done.wait()
        return try box.result!.get()
    }

    @discardableResult
    static func shell(_ script: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw ShellError(script: script, output: text) }
        return text
    }

    struct ShellError: Error {
        var script: String
        var output: String
    }
}

/// `setns(fd, CLONE_NEWNET)`, looked up dynamically: glibc declares it only under _GNU_SOURCE.
private func enterNetworkNamespace(_ descriptor: Int32) -> Int32 {
    typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return -1 }
    return unsafeBitCast(symbol, to: SetNamespace.self)(descriptor, 0x4000_0000)
}

private final class ResultBox<Value>: @unchecked Sendable {
    var body: (() throws -> Value)?
    var result: Result<Value, any Error>?
    let done = DispatchSemaphore(value: 0)
}

/// Unsafe transfer of non-Sendable shell objects created on the namespace thread.
private struct Transfer<Value>: @unchecked Sendable {
    var value: Value
}

@Suite("Linux shell in network namespaces (root only)", .serialized)
struct LinuxShellNamespaceTests {
    @Test func advertisementsCrossTheLinkWithTTL255() throws {
        if let reason = NamespacePair.skipReason {
            print("skipping advertisementsCrossTheLinkWithTTL255: \(reason)")
            return
        }
        let pair = try NamespacePair()
        for family in VRRPAddress.Family.allCases {
            let primaries =
                family == .ipv4
                ? [VRRPAddress(literal: "10.99.0.1"), VRRPAddress(literal: "10.99.0.2")]
                : [VRRPAddress(literal: "fe80::1"), VRRPAddress(literal: "fe80::2")]
            let sender = try pair.inside(0) {
                Transfer(value: try RawAdvertisementSocket(family: family, interface: "vrrp0"))
            }.value
            let receiver = try pair.inside(1) {
                Transfer(value: try RawAdvertisementSocket(family: family, interface: "vrrp1"))
            }.value
            let virtual = family == .ipv4 ? VRRPAddress(literal: "10.99.0.100") : VRRPAddress(literal: "2001:db8::100")
            let advertisement = Advertisement(
                virtualRouterID: 7,
                priority: 200,
                maximumAdvertisementIntervalCentiseconds: 10,
                addresses: [virtual]
            )
            let group = family.multicastGroup
            // The veth link may need a moment after coming up: resend as a master would.
            var received: ReceivedPacket?
            for _ in 0..<20 where received == nil {
                try sender.send(
                    try advertisement.encoded(source: primaries[0], destination: group),
                    from: primaries[0],
                    to: group
                )
                received = try receiver.receive(timeout: .milliseconds(100))
            }
            let packet = try #require(received, "no packet for \(family)")
            #expect(packet.hopLimit == 255)
            #expect(packet.source == primaries[0])
            #expect(packet.destination == group)
            let decoded = try Advertisement.decode(
                packet.payload,
                source: packet.source,
                destination: packet.destination,
                hopLimit: packet.hopLimit
            )
            #expect(decoded == advertisement)
            // Multicast loop is off: the sender does not hear itself.
            #expect(try sender.receive(timeout: .milliseconds(100)) == nil)
        }
    }

    @Test func netlinkAddsAndRemovesHostAddressesAndAnnouncementsSend() throws {
        if let reason = NamespacePair.skipReason {
            print("skipping netlinkAddsAndRemovesHostAddressesAndAnnouncementsSend: \(reason)")
            return
        }
        let pair = try NamespacePair()
        let shell = try pair.inside(0) {
            Transfer(
                value: (
                    try NetlinkInterfaceAddressing(interface: "vrrp0"),
                    try PacketNeighbourAnnouncer(interface: "vrrp0")
                )
            )
        }.value
        let addresses = [VRRPAddress(literal: "10.99.0.100"), VRRPAddress(literal: "2001:db8::100")]
        try shell.0.add(addresses)
        try shell.0.add(addresses)  // already present: not an error
        let shown = try NamespacePair.shell("ip -n \(pair.names[0]) addr show dev vrrp0")
        #expect(shown.contains("inet 10.99.0.100/32"))
        #expect(shown.contains("inet6 2001:db8::100/128"))
        let ipv6Line = shown.split(separator: "\n").first { $0.contains("2001:db8::100") } ?? ""
        #expect(ipv6Line.contains("nodad") && !ipv6Line.contains("tentative"))
        for address in addresses { try shell.1.announce(address) }
        try shell.0.remove(addresses)
        try shell.0.remove(addresses)  // already absent: not an error
        let after = try NamespacePair.shell("ip -n \(pair.names[0]) addr show dev vrrp0")
        #expect(!after.contains("10.99.0.100"))
        #expect(!after.contains("2001:db8::100"))
    }
}
#endif
