import Foundation
import Testing

/// Runs a command and returns its standard output.
private func run(_ arguments: [String]) throws -> String? {
    try ChildProcess.run(arguments).output
}

private func installed(_ command: String) -> Bool {
    ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"].contains {
        FileManager.default.isExecutableFile(atPath: $0 + command)
    }
}

/// TCP and UDP forwarding through the real binary, with real DNS clients and a real DNS server.
@Suite(.serialized) struct ForwardingTests {
    @Test func dnsOverUDPAndTCPThroughASharedAddress() async throws {
        guard installed("dnsmasq"), installed("dig") else {
            print("skipped: needs dnsmasq and dig (apt-get install dnsmasq-base bind9-dnsutils)")
            return
        }
        let dnsPort = freePort()
        let dnsmasq = try ChildProcess([
            "dnsmasq", "-k", "--conf-file=/dev/null", "--port=\(dnsPort)", "--listen-address=127.0.0.1",
            "--bind-interfaces", "--no-resolv", "--no-hosts", "--address=/portico.test/10.9.8.7", "--pid-file=",
        ])
        defer { dnsmasq.stop() }

        let front = freePort()
        let directory = try ManifestDirectory([
            "dns.yaml": """
            apiVersion: v1
            kind: Service
            metadata:
              name: dns
              annotations: {metallb.io/loadBalancerIPs: 127.0.0.1}
            spec:
              type: LoadBalancer
              ports:
              - {name: dns-udp, port: \(front), protocol: UDP}
              - {name: dns-tcp, port: \(front), protocol: TCP}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: dns-1
              labels: {kubernetes.io/service-name: dns}
            addressType: IPv4
            endpoints: [{addresses: [127.0.0.1]}]
            ports:
            - {name: dns-udp, port: \(dnsPort), protocol: UDP}
            - {name: dns-tcp, port: \(dnsPort), protocol: TCP}
            """
        ])
        let serve = try ServeProcess(arguments: [directory.path], adminPort: freePort())
        try serve.waitUntilReady()
        #expect(serve.log.contains("forwarding"), "\(serve.log)")

        // dig checks that the UDP answer comes from the address and port it asked.
        let udp = try run(["dig", "@127.0.0.1", "-p", "\(front)", "portico.test", "+short", "+time=2", "+tries=2"])
        #expect(udp?.trimmingCharacters(in: .whitespacesAndNewlines) == "10.9.8.7", "\(serve.log)")
        let tcp = try run(["dig", "@127.0.0.1", "-p", "\(front)", "portico.test", "+short", "+tcp", "+time=2"])
        #expect(tcp?.trimmingCharacters(in: .whitespacesAndNewlines) == "10.9.8.7", "\(serve.log)")

        let metrics = try Curl.get("http://127.0.0.1:\(serve.adminPort)/metrics")
        #expect(metrics.body.contains("portico_tcp_connections_accepted_total"), "\(metrics.body)")
        #expect(serve.terminate() == 0)
    }
}
