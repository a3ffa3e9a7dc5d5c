import Foundation
import Testing

@testable import PorticoNetboot

@Suite struct NetbootHTTPResponderTests {
    let node = HardwareAddress("52:54:00:12:34:56")!

    func responder(stateDirectory: String? = nil, assets: String? = nil) throws -> NetbootHTTPResponder {
        let inventory = try BootInventory(
            profiles: [
                BootProfile(
                    name: "ubuntu",
                    kernel: "ubuntu/vmlinuz",
                    initrds: ["ubuntu/initrd"],
                    kernelArguments: ["autoinstall", "ds=nocloud-net;s={{nocloud_url}}"],
                    templates: ["user-data": "#cloud-config\nautoinstall:\n  identity: {hostname: {{hostname}}}\n"]
                )
            ],
            groups: [BootGroup(name: "all", profile: "ubuntu")],
            machines: [Machine(name: "default/node1", hardwareAddress: self.node, hostname: "node1")]
        )
        let content = NetbootContent(
            .init(
                renderer: BootFileRenderer(
                    inventory: inventory,
                    httpBase: "http://192.0.2.10:8080",
                    serverAddress: "192.0.2.10"
                ),
                bootLoaders: ["undionly.kpxe": [1, 2, 3]],
                assetsDirectory: assets
            ),
            ledger: try InstallLedger(stateDirectory: stateDirectory)
        )
        return NetbootHTTPResponder(content: content)
    }

    func body(_ response: NetbootHTTPResponder.Response) -> (Int, String) {
        switch response {
        case .body(let status, _, let bytes, _): (status, String(decoding: bytes, as: UTF8.self))
        case .asset(let path): (-1, path)
        }
    }

    @Test func servesScriptsAnswersAndLoaders() throws {
        let responder = try self.responder()
        #expect(body(responder.respond(method: "GET", uri: "/boot.ipxe", now: 0)).1.hasPrefix("#!ipxe\nchain "))
        let (status, script) = body(
            responder.respond(method: "GET", uri: "/netboot/52-54-00-12-34-56/boot.ipxe?uuid=", now: 0)
        )
        #expect(status == 200)
        #expect(script.contains("ds=nocloud-net;s=http://192.0.2.10:8080/nocloud/52-54-00-12-34-56/"))
        #expect(
            body(responder.respond(method: "GET", uri: "/nocloud/52:54:00:12:34:56/user-data", now: 0))
                == (200, "#cloud-config\nautoinstall:\n  identity: {hostname: node1}\n")
        )
        #expect(
            body(responder.respond(method: "GET", uri: "/nocloud/52-54-00-12-34-56/meta-data", now: 0)).1
                == "instance-id: portico-525400123456-1\nlocal-hostname: node1\n"
        )
        #expect(body(responder.respond(method: "GET", uri: "/undionly.kpxe", now: 0)) == (200, "\u{1}\u{2}\u{3}"))
        #expect(body(responder.respond(method: "GET", uri: "/nocloud/52-54-00-12-34-56/kickstart", now: 0)).0 == 404)
        #expect(body(responder.respond(method: "GET", uri: "/netboot/52-54-00-00-00-00/user-data", now: 0)).0 == 404)
        #expect(body(responder.respond(method: "GET", uri: "/netboot/not-a-mac/user-data", now: 0)).0 == 400)
        #expect(body(responder.respond(method: "GET", uri: "/netboot/%2e%2e/x/y", now: 0)).0 == 400)
        #expect(body(responder.respond(method: "POST", uri: "/boot.ipxe", now: 0)).0 == 405)
        #expect(body(responder.respond(method: "GET", uri: "/netboot/52-54-00-12-34-56/installed", now: 0)).0 == 405)
    }

    @Test func completionFlipsToLocalBootAndChangesTheNextInstanceID() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "portico-http-\(UUID().uuidString)"
        )
        .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let responder = try self.responder(stateDirectory: directory)
        let before = body(responder.respond(method: "GET", uri: "/netboot/52-54-00-12-34-56/boot.ipxe", now: 0)).1
        #expect(before.contains("kernel "))
        guard
            case .body(200, _, _, .installCompleted(machine: "default/node1", installs: 1)) = responder.respond(
                method: "POST",
                uri: "/netboot/52-54-00-12-34-56/installed",
                now: 42
            )
        else { return #expect(Bool(false)) }
        let after = body(responder.respond(method: "GET", uri: "/netboot/52-54-00-12-34-56/boot.ipxe", now: 0)).1
        #expect(after.contains("exit") && !after.contains("kernel "))
        #expect(
            body(responder.respond(method: "GET", uri: "/nocloud/52-54-00-12-34-56/meta-data", now: 0)).1
                .hasPrefix("instance-id: portico-525400123456-2\n")
        )
        // A restarted server reads the record back.
        let restarted = try self.responder(stateDirectory: directory)
        #expect(body(restarted.respond(method: "GET", uri: "/netboot/52-54-00-12-34-56/boot.ipxe", now: 0)).1 == after)
    }

    @Test func assetsStayInsideTheirDirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "portico-assets-\(UUID().uuidString)"
        )
        .path
        try FileManager.default.createDirectory(atPath: directory + "/ubuntu", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: directory + "/ubuntu/vmlinuz"))
        try FileManager.default.createSymbolicLink(atPath: directory + "/escape", withDestinationPath: "/etc/passwd")
        let responder = try self.responder(assets: directory)
        guard case .asset(let path) = responder.respond(method: "GET", uri: "/assets/ubuntu/vmlinuz", now: 0) else {
            return #expect(Bool(false))
        }
        #expect(path.hasSuffix("/ubuntu/vmlinuz"))
        #expect(body(responder.respond(method: "GET", uri: "/assets/escape", now: 0)).0 == 404)
        #expect(body(responder.respond(method: "GET", uri: "/assets/../etc/passwd", now: 0)).0 == 400)
        #expect(body(responder.respond(method: "GET", uri: "/assets/nothing", now: 0)).0 == 404)
    }

    @Test func byteRanges() {
        #expect(ByteRangeRequest(header: nil, size: 100) == .whole)
        #expect(ByteRangeRequest(header: "bytes=0-9", size: 100) == .partial(0..<10))
        #expect(ByteRangeRequest(header: "bytes=90-", size: 100) == .partial(90..<100))
        #expect(ByteRangeRequest(header: "bytes=-10", size: 100) == .partial(90..<100))
        #expect(ByteRangeRequest(header: "bytes=50-1000", size: 100) == .partial(50..<100))
        #expect(ByteRangeRequest(header: "bytes=100-", size: 100) == .unsatisfiable)
        #expect(ByteRangeRequest(header: "bytes=0-1,5-6", size: 100) == .whole)
        #expect(ByteRangeRequest(header: "bytes=9-1", size: 100) == .whole)
        #expect(ByteRangeRequest(header: "items=0-1", size: 100) == .whole)
    }
}
