import Foundation
import Testing

/// `portico serve` with netboot resources, on loopback ports: real TFTP clients (tftp-hpa,
/// atftp) fetch a machine's rendered pxelinux menu and a boot loader, curl drives the HTTP
/// boot endpoints and the completion callback, and the completion survives a restart.
@Suite(.serialized) struct NetbootServeTests {
    static let mac = "52:54:00:12:34:56"
    static let expectedMenu = """
        DEFAULT install
        LABEL install
          KERNEL fedora/vmlinuz
          APPEND initrd=fedora/initrd.img inst.ks=http://127.0.0.1:{{http}}/netboot/52-54-00-12-34-56/kickstart ip=dhcp

        """

    struct Rig {
        let directory: URL
        let ports: (dhcp: Int, bootServer: Int, tftp: Int, http: Int)
        var state: String { directory.appendingPathComponent("state").path }
        var manifests: String { directory.appendingPathComponent("manifests").path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "portico-netboot-\(UUID().uuidString)"
            )
            ports = (freePort(), freePort(), freePort(), freePort())
            let fileManager = FileManager.default
            for sub in ["manifests", "state", "assets/fedora", "loaders"] {
                try fileManager.createDirectory(
                    at: directory.appendingPathComponent(sub),
                    withIntermediateDirectories: true
                )
            }
            try Data((0..<4096).map { UInt8($0 % 251) }).write(
                to: directory.appendingPathComponent("assets/fedora/vmlinuz")
            )
            try Data("loader".utf8).write(to: directory.appendingPathComponent("loaders/undionly.kpxe"))
            let manifest = """
                apiVersion: portico.dev/v1alpha1
                kind: NetbootSettings
                metadata: {name: netboot}
                spec:
                  serverAddress: 127.0.0.1
                  dhcp: {address: 127.0.0.1, port: \(ports.dhcp), bootServerPort: \(ports.bootServer)}
                  tftp: {address: 127.0.0.1, port: \(ports.tftp)}
                  http: {address: 127.0.0.1, port: \(ports.http)}
                  assetsDirectory: \(directory.appendingPathComponent("assets").path)
                  bootLoaderDirectories: [\(directory.appendingPathComponent("loaders").path)]
                ---
                apiVersion: portico.dev/v1alpha1
                kind: BootProfile
                metadata: {name: fedora}
                spec:
                  kernel: fedora/vmlinuz
                  initrd: [fedora/initrd.img]
                  args: ["inst.ks={{kickstart_url}}", ip=dhcp]
                  templates:
                    kickstart: |
                      network --hostname={{hostname}}
                      %post
                      curl -X POST {{callback_url}}
                      %end
                ---
                apiVersion: portico.dev/v1alpha1
                kind: MachineGroup
                metadata: {name: all}
                spec: {profile: fedora}
                ---
                apiVersion: portico.dev/v1alpha1
                kind: Machine
                metadata: {name: node1}
                spec: {mac: "\(NetbootServeTests.mac)", hostname: node1}
                """
            try manifest.write(
                to: directory.appendingPathComponent("manifests/netboot.yaml"),
                atomically: true,
                encoding: .utf8
            )
        }

        func serve() throws -> ServeProcess {
            let serve = try ServeProcess(arguments: [manifests, "--state-dir", state], adminPort: freePort())
            try serve.waitUntilReady()
            return serve
        }

        func url(_ path: String) -> String { "http://127.0.0.1:\(ports.http)\(path)" }

        /// tftp-hpa's get of `remote`; the file's text, or nil when the transfer failed.
        func tftpHPA(_ remote: String) throws -> String? {
            let local = directory.appendingPathComponent("hpa-\(UUID().uuidString)").path
            _ = try ChildProcess.run([
                "tftp", "-m", "binary", "127.0.0.1", String(ports.tftp), "-c", "get", remote, local,
            ])
            return try? String(contentsOfFile: local, encoding: .utf8)
        }

        /// atftp's get with blksize and tsize options.
        func atftp(_ remote: String) throws -> String? {
            let local = directory.appendingPathComponent("atftp-\(UUID().uuidString)").path
            let result = try ChildProcess.run([
                "atftp", "--option", "blksize 1428", "--option", "tsize 0", "-g", "-r", remote, "-l", local,
                "127.0.0.1", String(ports.tftp),
            ])
            return result.status == 0 ? try? String(contentsOfFile: local, encoding: .utf8) : nil
        }
    }

    static var clientsInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/tftp")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/atftp")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
    }

    @Test(.enabled(if: clientsInstalled, "tftp-hpa, atftp or curl is not installed"))
    func bootFilesOverTFTPAndHTTPAndACompletionThatSurvivesARestart() throws {
        let rig = try Rig()
        defer { try? FileManager.default.removeItem(at: rig.directory) }
        let menu = Self.expectedMenu.replacingOccurrences(of: "{{http}}", with: String(rig.ports.http))
        let menuPath = "pxelinux.cfg/01-52-54-00-12-34-56"
        let localBoot = "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n"
        var serve = try rig.serve()

        // TFTP: the machine's own menu, default = local boot, a boot loader, refusals.
        #expect(try rig.tftpHPA(menuPath) == menu)
        #expect(try rig.atftp(menuPath) == menu)
        #expect(try rig.tftpHPA("pxelinux.cfg/default") == localBoot)
        #expect(try rig.atftp("undionly.kpxe") == "loader")
        #expect(try rig.atftp("pxelinux.cfg/01-52-54-00-99-99-99") == nil)
        #expect(try rig.atftp("../manifests/netboot.yaml") == nil)

        // HTTP boot.
        let chain = try Curl.get(rig.url("/boot.ipxe"))
        #expect(chain.status == 200 && chain.body.contains("/netboot/${mac:hexhyp}/boot.ipxe"))
        let script = try Curl.get(rig.url("/netboot/52-54-00-12-34-56/boot.ipxe"))
        #expect(script.status == 200)
        #expect(
            script.body.contains("kernel http://127.0.0.1:\(rig.ports.http)/assets/fedora/vmlinuz initrd=initrd.img")
        )
        let kickstart = try Curl.get(rig.url("/netboot/52-54-00-12-34-56/kickstart"))
        #expect(
            kickstart.body
                == "network --hostname=node1\n%post\ncurl -X POST http://127.0.0.1:\(rig.ports.http)/netboot/52-54-00-12-34-56/installed\n%end\n"
        )
        let metaData = try Curl.get(rig.url("/nocloud/52-54-00-12-34-56/meta-data"))
        #expect(metaData.body == "instance-id: portico-525400123456-1\nlocal-hostname: node1\n")
        let range = try Curl.get(rig.url("/assets/fedora/vmlinuz"), ["-r", "10-13"])
        #expect(range.status == 206)
        #expect(range.headers["content-range"] == "bytes 10-13/4096")
        #expect(Array(range.body.utf8) == [10, 11, 12, 13])
        #expect(try Curl.get(rig.url("/assets/fedora/missing")).status == 404)

        // The installer reports completion: local boot from now on.
        let done = try Curl.get(rig.url("/netboot/52-54-00-12-34-56/installed"), ["-X", "POST"])
        #expect(done.status == 200)
        #expect(try Curl.get(rig.url("/netboot/52-54-00-12-34-56/boot.ipxe")).body.contains("exit"))
        #expect(try rig.tftpHPA(menuPath) == localBoot)
        #expect(serve.waitForLog("netboot install completed"))
        #expect(serve.log.contains("tftp transfer ended"))
        #expect(serve.log.contains("netboot answer file served"))
        let metrics = try Curl.get("http://127.0.0.1:\(serve.adminPort)/metrics")
        #expect(metrics.body.contains("portico_netboot_installs_completed_total 1"))
        let planJSON = try Curl.get("http://127.0.0.1:\(serve.adminPort)/plan")
        #expect(planJSON.body.contains("\"netboot\""))
        #expect(serve.terminate() == 0)
        let planned = try ChildProcess.run([
            PorticoProcess.binary.path, "plan", rig.manifests, "--state-dir", rig.state,
        ])
        #expect(
            planned.output.contains(
                "default/node1  52:54:00:12:34:56  node1     default/all  default/fedora  local (installed)"
            ),
            "\(planned.output)"
        )

        // After a restart the machine still boots its disk: the record is in the state directory.
        #expect(FileManager.default.fileExists(atPath: rig.state + "/netboot-installs.json"))
        serve = try rig.serve()
        #expect(try rig.atftp(menuPath) == localBoot)
        #expect(
            try Curl.get(rig.url("/nocloud/52-54-00-12-34-56/meta-data")).body.hasPrefix(
                "instance-id: portico-525400123456-2\n"
            )
        )

        // Asking for a reinstall in the manifest (a reload, sockets kept) installs again.
        let file = rig.manifests + "/netboot.yaml"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try text.replacingOccurrences(of: "hostname: node1}", with: "hostname: node1, reinstall: \"1\"}")
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(serve.waitForLog("configuration reloaded"))
        #expect(try rig.tftpHPA(menuPath) == menu)
        #expect(try Curl.get(rig.url("/netboot/52-54-00-12-34-56/boot.ipxe")).body.contains("kernel "))
        #expect(serve.terminate() == 0)
    }

    @Test func checkReportsAnUndefinedTemplateVariableWithItsPosition() throws {
        let rig = try Rig()
        defer { try? FileManager.default.removeItem(at: rig.directory) }
        let file = rig.manifests + "/netboot.yaml"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try text.replacingOccurrences(of: "network --hostname={{hostname}}", with: "network --hostname={{fqdn}}")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run([PorticoProcess.binary.path, "check", rig.manifests])
        #expect(result.status == 1)
        #expect(
            result.output.contains(
                "netboot.yaml:21:26: error: BootProfile default/fedora: spec.templates.kickstart: {{fqdn}} is not defined for Machine default/node1"
            ),
            "\(result.output)"
        )
    }
}
