import Foundation
import Testing

/// `portico plan --node NAME`: the virtual routers a node would run, as text and JSON.
@Suite struct VIPPlanCommandTests {
    static let manifests = """
        apiVersion: metallb.io/v1beta1
        kind: IPAddressPool
        metadata: {name: lan, namespace: metallb-system}
        spec:
          addresses: [10.0.20.200-10.0.20.210]
        ---
        apiVersion: metallb.io/v1beta1
        kind: L2Advertisement
        metadata: {name: lan, namespace: metallb-system}
        spec:
          ipAddressPools: [lan]
          nodeSelectors: [{matchLabels: {role: edge}}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          annotations: {metallb.io/loadBalancerIPs: 10.0.20.200, portico.dev/vrrp-vrid: "42"}
        spec:
          type: LoadBalancer
          ports: [{port: 18081}]
        """

    @Test func planShowsTheVirtualRoutersOfTheNode() throws {
        let directory = try ManifestDirectory(["vip.yaml": Self.manifests])
        let json = try PorticoProcess.run([
            "plan", directory.path, "--format", "json", "--node", "n1", "--node-label", "role=edge",
            "--vrrp-interface", "eth0", "--vrrp-priority", "200", "--vrrp-advert-interval", "100",
        ])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["node"] as? String == "n1")
        let groups = object?["virtualIPs"] as? [[String: Any]] ?? []
        #expect(groups.count == 1)
        #expect(groups.first?["virtualRouterID"] as? Int == 42)
        #expect(groups.first?["addresses"] as? [String] == ["10.0.20.200"])
        #expect(groups.first?["priority"] as? Int == 200)
        #expect(groups.first?["interface"] as? String == "eth0")
        #expect(groups.first?["advertisementIntervalMilliseconds"] as? Int == 100)
        #expect(groups.first?["services"] as? [String] == ["default/web"])
        #expect(groups.first?["preempt"] as? Bool == true)
        #expect(groups.first?["preemptDelayMilliseconds"] as? Int == 0)
        // Preemption as configured: off, or delayed.
        let noPreempt = try PorticoProcess.run([
            "plan", directory.path, "--format", "json", "--node", "n1", "--node-label", "role=edge",
            "--vrrp-no-preempt", "--vrrp-preempt-delay", "5",
        ])
        let noPreemptGroups =
            (try JSONSerialization.jsonObject(with: Data(noPreempt.stdout.utf8)) as? [String: Any])?["virtualIPs"]
            as? [[String: Any]] ?? []
        #expect(noPreemptGroups.first?["preempt"] as? Bool == false, "\(noPreempt.stdout)\(noPreempt.stderr)")
        #expect(noPreemptGroups.first?["preemptDelayMilliseconds"] as? Int == 5000)

        let text = try PorticoProcess.run(["plan", directory.path, "--node", "n1", "--node-label", "role=edge"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("Virtual IPs on node n1 (1)"), "\(text.stdout)")
        #expect(text.stdout.contains("(none: --vrrp-interface)"), "\(text.stdout)")

        // A node the L2Advertisement does not select announces nothing.
        let other = try PorticoProcess.run(["plan", directory.path, "--node", "n2", "--format", "json"])
        let otherObject = try JSONSerialization.jsonObject(with: Data(other.stdout.utf8)) as? [String: Any]
        #expect((otherObject?["virtualIPs"] as? [Any])?.isEmpty == true)

        let bad = try PorticoProcess.run(["plan", directory.path, "--node", "n1", "--vrrp-advert-interval", "15"])
        #expect(bad.status == 2)
    }
}

#if os(Linux)
/// Without root, `portico serve` says why it runs no virtual routers and keeps serving.
@Suite struct VIPWithoutRootTests {
    @Test func serveWithoutRootSkipsVirtualIPsAndKeepsServing() throws {
        guard geteuid() == 0, (try? ChildProcess.run(["setpriv", "--version"]).status) == 0 else {
            print("skipping serveWithoutRootSkipsVirtualIPsAndKeepsServing: needs root and setpriv to drop to nobody")
            return
        }
        let directory = try ManifestDirectory(["vip.yaml": VIPPlanCommandTests.manifests])
        _ = chmod(directory.path, 0o755)
        _ = chmod(directory.path + "/vip.yaml", 0o644)
        let log = directory.path + "/serve.log"
        let port = freePort()
        let process = try ChildProcess(
            [
                "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PorticoProcess.binary.path, "serve",
                directory.path, "--node", "n1", "--node-label", "role=edge", "--vrrp-interface", "lo", "--admin",
                "127.0.0.1:\(port)",
            ],
            stdout: .file(log),
            stderr: .file(log)
        )
        defer { process.stop(grace: 5) }
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline && !text.contains("admin endpoint listening") && process.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        if text.contains("Permission denied") {
            print(
                "skipping serveWithoutRootSkipsVirtualIPsAndKeepsServing: nobody cannot run it: \(text)"
            )
            return
        }
        #expect(text.contains("virtual IPs not started: VRRP needs CAP_NET_RAW and CAP_NET_ADMIN"), "\(text)")
        #expect(process.isRunning, "\(text)")
        let ready = try Curl.get("http://127.0.0.1:\(port)/readyz")
        #expect(ready.status == 200)
    }
}
#endif
