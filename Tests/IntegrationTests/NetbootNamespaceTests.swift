import Foundation
import Testing

/// Network boot across real network namespaces (root only): a router namespace runs dnsmasq
/// as the LAN's DHCP server, a server namespace runs `portico serve` with proxyDHCP on the
/// real ports 67/4011 and TFTP on 69, and a client namespace sends DHCP DISCOVERs crafted
/// with scapy. A plain DISCOVER gets dnsmasq's offer only; a PXE DISCOVER also gets
/// Portico's proxy offer (no address, the boot file, our siaddr). Then the client fetches its
/// rendered pxelinux menu over TFTP from the server's address.
@Suite(.serialized) struct NetbootNamespaceTests {
    static let python = "/usr/bin/python3"

    static var skipReason: String? {
        if getuid() != 0 { return "needs root to create network namespaces" }
        for tool in ["/usr/sbin/ip", "/usr/sbin/dnsmasq", "/usr/bin/tftp", python] {
            if !FileManager.default.isExecutableFile(atPath: tool) { return "\(tool) is not installed" }
        }
        guard (try? ChildProcess.run([python, "-c", "import scapy.all"]).status) == 0 else {
            return "python3-scapy is not installed"
        }
        return nil
    }

    static var canRun: Bool {
        if let reason = skipReason {
            print("NetbootNamespaceTests skipped: \(reason)")
            return false
        }
        return true
    }

    /// The client: one DISCOVER, then every OFFER seen for `seconds`, one JSON line each.
    static let client = #"""
        import json, sys
        from scapy.all import Ether, IP, UDP, BOOTP, DHCP, conf, sendp, AsyncSniffer, mac2str
        import time
        iface, mac, pxe = sys.argv[1], sys.argv[2], sys.argv[3] == "pxe"
        conf.checkIPaddr = False
        options = [("message-type", "discover")]
        if pxe:
            options += [("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"),
                        (93, b"\x00\x00"),
                        (97, b"\x00" + bytes(range(16)))]
        options += ["end"]
        xid = 0x5eed0000 + (1 if pxe else 2)
        packet = (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                  / UDP(sport=68, dport=67) / BOOTP(chaddr=mac2str(mac), xid=xid, flags=0x8000) / DHCP(options=options))
        sniffer = AsyncSniffer(iface=iface, filter="udp and dst port 68", store=True)
        sniffer.start()
        time.sleep(0.5)
        sendp(packet, iface=iface, verbose=False)
        time.sleep(4.5)
        for reply in sniffer.stop():
            if BOOTP not in reply or reply[BOOTP].xid != xid:
                continue
            opts = {}
            for option in reply[DHCP].options:
                if isinstance(option, tuple):
                    key, value = option[0], option[1]
                    opts[str(key)] = value.hex() if isinstance(value, bytes) else str(value)
            print(json.dumps({"yiaddr": reply[BOOTP].yiaddr, "siaddr": reply[BOOTP].siaddr,
                              "file": reply[BOOTP].file.rstrip(b"\x00").decode(), "options": opts}))
        """#

    struct Topology {
        let tag = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
        var names: [String] { ["pr\(tag)", "pp\(tag)", "pc\(tag)", "ps\(tag)"] }
        var router: String { "pr\(tag)" }
        var portico: String { "pp\(tag)" }
        var clientNamespace: String { "pc\(tag)" }
        var switchNamespace: String { "ps\(tag)" }

        func run(_ arguments: [String]) throws {
            let result = try ChildProcess.run(arguments)
            guard result.status == 0 else {
                throw ChildProcess.ChildError.spawn(arguments.joined(separator: " "), result.status)
            }
        }

        func create() throws {
            for name in names { try run(["ip", "netns", "add", name]) }
            try run(["ip", "-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
            try run(["ip", "-n", switchNamespace, "link", "set", "br0", "up"])
            for (namespace, address) in [(router, "10.213.0.1/24"), (portico, "10.213.0.2/24"), (clientNamespace, "")] {
                try run([
                    "ip", "-n", namespace, "link", "add", "eth0", "type", "veth", "peer", "name", "p-\(namespace)",
                    "netns", switchNamespace,
                ])
                try run(["ip", "-n", switchNamespace, "link", "set", "p-\(namespace)", "master", "br0", "up"])
                if !address.isEmpty { try run(["ip", "-n", namespace, "addr", "add", address, "dev", "eth0"]) }
                try run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
                try run(["ip", "-n", namespace, "link", "set", "lo", "up"])
            }
        }

        func destroy() {
            for name in names { _ = try? ChildProcess.run(["ip", "netns", "delete", name]) }
        }
    }

    struct Offer: Decodable {
        var yiaddr: String
        var siaddr: String
        var file: String
        var options: [String: String]
    }

    func discover(_ topology: Topology, script: String, pxe: Bool) throws -> [Offer] {
        let result = try ChildProcess.run([
            "ip", "netns", "exec", topology.clientNamespace, Self.python, script, "eth0", "52:54:00:12:34:56",
            pxe ? "pxe" : "plain",
        ])
        return result.output.split(separator: "\n").compactMap {
            try? JSONDecoder().decode(Offer.self, from: Data($0.utf8))
        }
    }

    @Test(.enabled(if: canRun, "needs root, iproute2, dnsmasq, tftp-hpa and python3-scapy"))
    func plainDHCPIsIgnoredAndPXEGetsTheProxyOffer() throws {
        let topology = Topology()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-ns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer {
            topology.destroy()
            try? FileManager.default.removeItem(at: directory)
        }
        try topology.create()
        let script = directory.appendingPathComponent("client.py").path
        try Self.client.write(toFile: script, atomically: true, encoding: .utf8)
        try """
        apiVersion: portico.dev/v1alpha1
        kind: NetbootSettings
        metadata: {name: netboot}
        spec:
          serverAddress: 10.213.0.2
          interface: eth0
          http: {port: 8080}
          bootLoaderDirectories: [\(directory.path)]
        ---
        apiVersion: portico.dev/v1alpha1
        kind: BootProfile
        metadata: {name: p}
        spec: {kernel: vmlinuz, args: ["ks={{kickstart_url}}"]}
        ---
        apiVersion: portico.dev/v1alpha1
        kind: MachineGroup
        metadata: {name: all}
        spec: {profile: p}
        ---
        apiVersion: portico.dev/v1alpha1
        kind: Machine
        metadata: {name: node1}
        spec: {mac: "52:54:00:12:34:56"}
        """.write(toFile: directory.appendingPathComponent("netboot.yaml").path, atomically: true, encoding: .utf8)

        let dnsmasqLog = directory.appendingPathComponent("dnsmasq.log").path
        let dnsmasq = try ChildProcess(
            [
                "ip", "netns", "exec", topology.router, "dnsmasq", "--no-daemon", "--port=0", "--interface=eth0",
                "--bind-interfaces", "--dhcp-range=10.213.0.100,10.213.0.150,255.255.255.0,1h",
                "--dhcp-leasefile=\(directory.path)/leases", "--pid-file=\(directory.path)/dnsmasq.pid",
                "--log-dhcp",
            ],
            stdout: .file(dnsmasqLog),
            stderr: .file(dnsmasqLog)
        )
        defer { _ = dnsmasq.stop(grace: 2) }
        let porticoLog = directory.appendingPathComponent("portico.log").path
        let portico = try ChildProcess(
            [
                "ip", "netns", "exec", topology.portico, PorticoProcess.binary.path, "serve", directory.path,
                "--state-dir", directory.appendingPathComponent("state").path, "--admin", "127.0.0.1:0",
            ],
            stdout: .file(porticoLog),
            stderr: .file(porticoLog)
        )
        defer { _ = portico.stop(grace: 5) }
        let log = { (try? String(contentsOfFile: porticoLog, encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(20)
        while !log().contains("netboot serving") && Date() < deadline && portico.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
        }
        try #require(log().contains("netboot serving"), "portico did not start:\n\(log())")

        let plain = try discover(topology, script: script, pxe: false)
        #expect(plain.contains { $0.options["server_id"] == "10.213.0.1" }, "no offer from dnsmasq: \(plain)")
        #expect(!plain.contains { $0.options["server_id"] == "10.213.0.2" }, "Portico answered a plain DISCOVER")

        let pxe = try discover(topology, script: script, pxe: true)
        let proxy = try #require(pxe.first { $0.options["server_id"] == "10.213.0.2" }, "no proxy offer: \(pxe)")
        #expect(proxy.yiaddr == "0.0.0.0")
        #expect(proxy.siaddr == "10.213.0.2")
        #expect(proxy.file == "undionly.kpxe")
        #expect(proxy.options["vendor_class_id"] == Data("PXEClient".utf8).map { String(format: "%02x", $0) }.joined())
        #expect(
            proxy.options["pxe_client_machine_identifier"] == "00"
                + (0..<16).map { String(format: "%02x", $0) }.joined()
        )
        #expect(pxe.contains { $0.options["server_id"] == "10.213.0.1" && $0.yiaddr.hasPrefix("10.213.0.1") })
        #expect(log().contains("proxydhcp answer"))

        // The client, with an address, fetches its menu from the server over TFTP (port 69).
        try topology.run(["ip", "-n", topology.clientNamespace, "addr", "add", "10.213.0.120/24", "dev", "eth0"])
        let menu = directory.appendingPathComponent("menu").path
        _ = try ChildProcess.run([
            "ip", "netns", "exec", topology.clientNamespace, "tftp", "-m", "binary", "10.213.0.2", "-c", "get",
            "pxelinux.cfg/01-52-54-00-12-34-56", menu,
        ])
        let text = (try? String(contentsOfFile: menu, encoding: .utf8)) ?? ""
        #expect(
            text.contains("APPEND initrd= ks=http://10.213.0.2:8080/netboot/52-54-00-12-34-56/kickstart"),
            "\(text)"
        )
    }

    static var qemuSkipReason: String? {
        if let reason = skipReason { return reason }
        for file in ["/usr/bin/qemu-system-x86_64", "/usr/lib/ipxe/qemu/pxe-e1000.rom", "/usr/lib/ipxe/undionly.kpxe"] {
            if !FileManager.default.fileExists(atPath: file) {
                return "\(file) is missing (qemu-system-x86, ipxe-qemu, ipxe)"
            }
        }
        return nil
    }

    static var canRunQEMU: Bool {
        if let reason = qemuSkipReason {
            print("NetbootNamespaceTests qemu boot skipped: \(reason)")
            return false
        }
        return true
    }

    static let ovmf = "/usr/share/ovmf/OVMF.fd"

    static var canRunOVMF: Bool {
        guard canRunQEMU else { return false }
        guard FileManager.default.fileExists(atPath: ovmf),
            FileManager.default.fileExists(atPath: "/usr/lib/ipxe/ipxe.efi")
        else {
            print("NetbootNamespaceTests UEFI boot skipped: \(ovmf) or /usr/lib/ipxe/ipxe.efi is missing (ovmf, ipxe)")
            return false
        }
        return true
    }

    enum Firmware: String {
        /// SeaBIOS with qemu's iPXE e1000 option ROM (an iPXE build that says so: treated as a
        /// plain PXE ROM so it loads undionly.kpxe over TFTP).
        case bios
        /// OVMF (EDK2) with a virtio NIC and no option ROM: EDK2's own PXE client, which uses
        /// port 4011 and probes tsize before the transfer, then iPXE's ipxe.efi.
        case uefi
    }

    /// A real PXE client: qemu (TCG) on a tap device in the LAN boots from Portico through
    /// proxyDHCP, TFTP (the iPXE loader), /boot.ipxe, the machine's own script and its
    /// kickstart over HTTP. The router sends IPv6 router advertisements so iPXE does not wait
    /// for IPv6 autoconfiguration. qemu's built-in TFTP is not involved.
    func bootQEMU(_ firmware: Firmware) throws {
        let topology = Topology()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "portico-qemu-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer {
            topology.destroy()
            try? FileManager.default.removeItem(at: directory)
        }
        try topology.create()
        try topology.run(["ip", "-n", topology.router, "addr", "add", "fd00:213::1/64", "dev", "eth0", "nodad"])
        try topology.run(["ip", "-n", topology.switchNamespace, "tuntap", "add", "tap0", "mode", "tap"])
        try topology.run(["ip", "-n", topology.switchNamespace, "link", "set", "tap0", "master", "br0", "up"])
        try """
        apiVersion: portico.dev/v1alpha1
        kind: NetbootSettings
        metadata: {name: netboot}
        spec:
          serverAddress: 10.213.0.2
          interface: eth0
          http: {port: 8080}
          firmwareIPXEAsPlainPXE: \(firmware == .bios)
        ---
        apiVersion: portico.dev/v1alpha1
        kind: BootProfile
        metadata: {name: p}
        spec:
          kernel: vmlinuz
          templates:
            ipxe: |
              #!ipxe
              imgfetch {{kickstart_url}}
              echo portico-kickstart-fetched
              poweroff
            kickstart: |
              # kickstart for {{hostname}}
        ---
        apiVersion: portico.dev/v1alpha1
        kind: MachineGroup
        metadata: {name: all}
        spec: {profile: p}
        ---
        apiVersion: portico.dev/v1alpha1
        kind: Machine
        metadata: {name: vm1}
        spec: {mac: "52:54:00:12:34:56", hostname: vm1}
        """.write(toFile: directory.appendingPathComponent("netboot.yaml").path, atomically: true, encoding: .utf8)
        let dnsmasqLog = directory.appendingPathComponent("dnsmasq.log").path
        let dnsmasq = try ChildProcess(
            [
                "ip", "netns", "exec", topology.router, "dnsmasq", "--no-daemon", "--port=0", "--interface=eth0",
                "--bind-interfaces", "--dhcp-range=10.213.0.100,10.213.0.150,255.255.255.0,1h",
                "--enable-ra", "--dhcp-range=fd00:213::,ra-only",
                "--dhcp-leasefile=\(directory.path)/leases", "--pid-file=\(directory.path)/dnsmasq.pid",
            ],
            stdout: .file(dnsmasqLog),
            stderr: .file(dnsmasqLog)
        )
        defer { _ = dnsmasq.stop(grace: 2) }
        let porticoLog = directory.appendingPathComponent("portico.log").path
        let portico = try ChildProcess(
            [
                "ip", "netns", "exec", topology.portico, PorticoProcess.binary.path, "serve", directory.path,
                "--state-dir", directory.appendingPathComponent("state").path, "--admin", "127.0.0.1:0",
            ],
            stdout: .file(porticoLog),
            stderr: .file(porticoLog)
        )
        defer { _ = portico.stop(grace: 5) }
        let log = { (try? String(contentsOfFile: porticoLog, encoding: .utf8)) ?? "" }
        var deadline = Date().addingTimeInterval(20)
        while !log().contains("netboot serving") && Date() < deadline && portico.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
        }
        try #require(log().contains("netboot serving"), "portico did not start:\n\(log())")
        let started = Date()
        let qemuLog = directory.appendingPathComponent("qemu.log").path
        let machine: [String] =
            switch firmware {
            case .bios:
                [
                    "-boot", "n", "-device",
                    "e1000,netdev=n0,mac=52:54:00:12:34:56,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom",
                ]
            case .uefi:
                ["-bios", Self.ovmf, "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile="]
            }
        let qemu = try ChildProcess(
            [
                "ip", "netns", "exec", topology.switchNamespace, "qemu-system-x86_64", "-accel", "tcg", "-m", "512",
                "-display", "none", "-serial", "none", "-monitor", "none", "-no-reboot",
                "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
            ] + machine,
            stdout: .file(qemuLog),
            stderr: .file(qemuLog)
        )
        defer { _ = qemu.stop(grace: 1) }
        deadline = Date().addingTimeInterval(120)
        // When each boot step first shows in the log (polled every 0.1 s), for the timeline.
        let steps = [
            "proxydhcp answer", "tftp transfer ended", "netboot ipxe script served", "netboot answer file served",
        ]
        var seen: [String: Double] = [:]
        while !log().contains("netboot answer file served") && Date() < deadline && qemu.isRunning {
            let current = log()
            for step in steps where seen[step] == nil && current.contains(step) {
                seen[step] = Date().timeIntervalSince(started)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let elapsed = Date().timeIntervalSince(started)
        let text = log()
        let timeline = steps.map { "\($0) \(seen[$0].map { String(format: "%.1f s", $0) } ?? "-")" }
        print("qemu \(firmware.rawValue) boot to the kickstart request: \(String(format: "%.1f", elapsed)) s")
        print("qemu \(firmware.rawValue) timeline: \(timeline.joined(separator: ", "))")
        for line in text.split(separator: "\n") where line.contains("tftp transfer ended") || line.contains("dhcp.type")
        {
            print("qemu \(firmware.rawValue) log: \(line)")
        }
        let loader = firmware == .bios ? "undionly.kpxe" : "ipxe.efi"
        #expect(text.contains("proxydhcp answer"), "\(text)")
        #expect(text.contains("tftp.file=\(loader)") && text.contains("tftp transfer ended"), "\(text)")
        #expect(text.contains("netboot ipxe script served"), "\(text)")
        #expect(
            text.contains("netboot answer file served"),
            "\(text)\nqemu: \((try? String(contentsOfFile: qemuLog, encoding: .utf8)) ?? "")"
        )
        if firmware == .uefi {
            #expect(text.contains("dhcp.port=4011"), "EDK2 asks the boot server on 4011: \(text)")
        }
    }

    @Test(.enabled(if: canRunQEMU, "needs root, qemu-system-x86, ipxe-qemu and ipxe"), .timeLimit(.minutes(3)))
    func qemuBIOSBootsFromPorticoToItsAnswerFile() throws {
        try bootQEMU(.bios)
    }

    @Test(.enabled(if: canRunOVMF, "needs root, qemu-system-x86, ovmf and ipxe"), .timeLimit(.minutes(3)))
    func qemuUEFIBootsFromPorticoToItsAnswerFile() throws {
        try bootQEMU(.uefi)
    }
}
