#if os(Linux)
import Foundation
import Glibc
import Testing

/// A keepalived node (`vrrp_version 3`, VRID 51, 100 ms adverts) in a lab namespace.
final class KeepalivedNode {
    let lab: VIPLab
    let index: Int
    let directory: URL
    private(set) var process: ChildProcess?
    private var starts = 0

    static var skipReason: String? {
        (try? ChildProcess.run(["keepalived", "--version"]).status) == nil
            ? "needs keepalived (apt-get install keepalived)" : nil
    }

    init(lab: VIPLab, index: Int) throws {
        self.lab = lab
        self.index = index
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-ka-\(lab.suffix)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        killAll()
        try? FileManager.default.removeItem(at: directory)
    }

    var log: String { (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? "" }

    func start(priority: Int) throws {
        let configuration = """
            global_defs {
                router_id portico-lab
                vrrp_version 3
            }
            vrrp_instance lab {
                state BACKUP
                interface eth0
                virtual_router_id 51
                priority \(priority)
                advert_int 0.1
                virtual_ipaddress {
                    \(VIPLab.virtualIP)/32 dev eth0
                }
            }
            """
        let file = directory.appendingPathComponent("keepalived.conf")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        let log = directory.appendingPathComponent("log").path
        starts += 1
        process = try ChildProcess(
            [
                "ip", "netns", "exec", lab.nodes[index], "keepalived", "--dont-fork", "--log-console", "--vrrp",
                // Fresh pid files per start: a killed VRRP child may linger as a zombie, and
                // keepalived refuses to start while its pid file names a live process.
                "--use-file", file.path, "--pid", directory.appendingPathComponent("pid-\(starts)").path,
                "--vrrp_pid", directory.appendingPathComponent("vrrp.pid-\(starts)").path,
            ],
            stdout: .file(log),
            stderr: .file(log)
        )
    }

    /// SIGKILL every process of the namespace (keepalived's parent and its VRRP child): a crash.
    /// All are stopped first: a VRRP child that saw its parent die would resign cleanly.
    func killAll() {
        if let pids = try? ChildProcess.run(["ip", "netns", "pids", lab.nodes[index]]).output {
            let list = pids.split(separator: "\n").compactMap { pid_t($0) }
            for pid in list { Glibc.kill(pid, SIGSTOP) }
            for pid in list { Glibc.kill(pid, SIGKILL) }
        }
        process?.wait()
    }

    func terminate() {
        process?.stop(grace: 10)
    }
}

/// Portico and keepalived 2.2 (`vrrp_version 3`, same VRID and advert interval) form one
/// virtual router; each takes over when the other dies.
@Suite(.serialized) struct KeepalivedInteropTests {
    @Test func porticoAndKeepalivedFailOverToEachOther() throws {
        if let reason = VIPLab.skipReason ?? KeepalivedNode.skipReason {
            print("skipping porticoAndKeepalivedFailOverToEachOther: \(reason)")
            return
        }
        let lab = try VIPLab(nodeCount: 2)
        let keepalived = try KeepalivedNode(lab: lab, index: 1)
        func portico(priority: Int) throws -> VIPNode {
            try VIPNode(
                lab: lab,
                index: 0,
                extraArguments: [
                    "--vrrp-advert-interval", "100", "--vrrp-priority", "\(priority)", "--vrrp-vrid",
                    "\(VIPLab.virtualIP)=51",
                ]
            )
        }
        func dump(_ node: VIPNode) -> String {
            "== portico\n\(node.log.suffix(3000))\n== keepalived\n\(keepalived.log.suffix(3000))"
        }

        // keepalived (150) is master, Portico (100) backup.
        var node = try portico(priority: 100)
        try keepalived.start(priority: 150)
        try node.start()
        try node.waitUntilReady()
        let keepalivedMaster = VIPFailoverTests.waitFor(5) { lab.holds(1) && !lab.holds(0) }
        try #require(keepalivedMaster != nil, "keepalived did not become the single master:\n\(dump(node))")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(!lab.holds(0), "Portico took the address from a higher-priority keepalived:\n\(dump(node))")

        // keepalived crashes: Portico takes over.
        keepalived.killAll()
        // keepalived leaves a crashed run's address bound (its kernel would still answer ARP
        // for it); remove it as the machine's death would, so the client must reach Portico.
        _ = try? lab.run(in: lab.nodes[1], ["ip", "addr", "del", "\(VIPLab.virtualIP)/32", "dev", "eth0"])
        let toPortico = VIPFailoverTests.waitFor(3) { lab.holds(0) }
        try #require(toPortico != nil, "Portico did not take over from keepalived:\n\(dump(node))")
        print("keepalived SIGKILL -> Portico holds the VIP after \(toPortico!) s")
        #expect(toPortico! < 1.0)
        let reached = VIPFailoverTests.waitFor(3, poll: 0.05) { VIPFailoverTests.answeringNode(lab) == "n1" }
        #expect(reached != nil, "the client did not reach Portico on the VIP")

        // keepalived comes back with the higher priority and preempts: Portico lets go.
        try keepalived.start(priority: 150)
        let preempted = VIPFailoverTests.waitFor(5) { lab.holds(1) && !lab.holds(0) }
        #expect(preempted != nil, "keepalived did not preempt Portico:\n\(dump(node))")

        // Portico comes back with the higher priority, preempts keepalived, then crashes:
        // keepalived takes over.
        node.terminate()
        node = try portico(priority: 200)
        try node.start()
        try node.waitUntilReady()
        let porticoMaster = VIPFailoverTests.waitFor(5) { lab.holds(0) && !lab.holds(1) }
        try #require(porticoMaster != nil, "Portico (200) did not preempt keepalived (150):\n\(dump(node))")
        node.kill()
        let toKeepalived = VIPFailoverTests.waitFor(3) { lab.holds(1) }
        try #require(toKeepalived != nil, "keepalived did not take over from Portico:\n\(dump(node))")
        print("Portico SIGKILL -> keepalived holds the VIP after \(toKeepalived!) s")
        #expect(toKeepalived! < 1.0)
        keepalived.terminate()
    }
}
#endif
