import Foundation
import Testing

@testable import PorticoNetboot

@Suite struct BootTemplateTests {
    @Test func rendersPlainTextWithoutHTMLEscaping() throws {
        let template = try BootTemplate("echo \"{{user}}\" > /etc/sudoers.d/{{user}} <&>\n")
        let rendering = template.render(["user": "o'ps&<x>"])
        #expect(rendering.text == "echo \"o'ps&<x>\" > /etc/sudoers.d/o'ps&<x> <&>\n")
        #expect(rendering.missing.isEmpty)
    }

    @Test func undefinedVariablesAreReportedNotRenderedEmpty() throws {
        let template = try BootTemplate("disk={{disk}}\nuser={{user}}\n{{#keys}}key {{.}} for {{owner}}\n{{/keys}}")
        let rendering = template.render(["user": "ops", "keys": ["a", "b"]])
        #expect(rendering.missing == ["disk", "owner"])
        #expect(template.position(of: "disk")! == (1, 6))
        #expect(template.position(of: "owner")! == (3, 24))
    }

    @Test func sectionsOverListsBooleansAndMaps() throws {
        let template = try BootTemplate(
            "{{#keys}}\nsshkey \"{{.}}\"\n{{/keys}}{{#efi}}efi\n{{/efi}}{{^efi}}bios\n{{/efi}}{{disk.device}}\n"
        )
        let rendering = template.render([
            "keys": ["k1", "k2"], "efi": false, "disk": .map(["device": "nvme0n1"]),
        ])
        #expect(rendering.text == "sshkey \"k1\"\nsshkey \"k2\"\nbios\nnvme0n1\n")
        #expect(rendering.missing.isEmpty)
    }

    @Test func aFlagUsedOnlyAsSectionMustStillBeDefined() throws {
        let template = try BootTemplate("{{#efi}}efi{{/efi}}")
        #expect(template.render([:]).missing == ["efi"])
    }

    @Test func parseErrorsHaveTheirLineAndColumn() {
        #expect(throws: BootTemplate.ParseError.self) { try BootTemplate("line one\n{{#open}}never closed\n") }
        do {
            _ = try BootTemplate("ok\nnext {{#a}} x {{/b}}\n")
            Issue.record("expected a parse error")
        } catch {
            #expect(error.line == 2)
            #expect(error.reason.contains("closed with a different name"))
        }
    }
}

@Suite struct BootFileRendererTests {
    let node = HardwareAddress("52:54:00:12:34:56")!
    let stranger = HardwareAddress("52:54:00:99:99:99")!
    let uuid = ClientUUID("4c4c4544-0042-3510-8052-b2c04f4b4e31")!

    func renderer(machine: Machine? = nil, profileTemplates: [String: String] = [:]) throws -> BootFileRenderer {
        let profile = BootProfile(
            name: "fedora",
            kernel: "fedora/vmlinuz",
            initrds: ["fedora/initrd.img"],
            kernelArguments: ["inst.ks={{kickstart_url}}", "console={{console}}"],
            templates: ["kickstart": "network --hostname={{hostname}}\ndisk {{disk}}\n"].merging(profileTemplates) {
                $1
            }
        )
        let inventory = try BootInventory(
            profiles: [profile],
            groups: [BootGroup(name: "all", profile: "fedora", variables: ["console": "ttyS0", "disk": "sda"])],
            machines: [
                machine
                    ?? Machine(name: "default/node1", hardwareAddress: self.node, uuid: self.uuid, hostname: "node1")
            ]
        )
        return BootFileRenderer(inventory: inventory, httpBase: "http://192.0.2.10:8080/", serverAddress: "192.0.2.10")
    }

    @Test func pxelinuxMenuForAnInstallingMachineAndLocalBootOtherwise() throws {
        let renderer = try self.renderer()
        let expected = """
            DEFAULT install
            LABEL install
              KERNEL fedora/vmlinuz
              APPEND initrd=fedora/initrd.img inst.ks=http://192.0.2.10:8080/netboot/52-54-00-12-34-56/kickstart console=ttyS0

            """
        #expect(renderer.pxelinuxConfig(for: .hardwareAddress(type: 1, self.node), records: [:]) == .rendered(expected))
        #expect(renderer.pxelinuxConfig(for: .uuid(self.uuid), records: [:]) == .rendered(expected))
        let local = BootFileRenderer.Outcome.rendered("DEFAULT local\nLABEL local\n  LOCALBOOT 0\n")
        #expect(renderer.pxelinuxConfig(for: .default, records: [:]) == local)
        #expect(renderer.pxelinuxConfig(for: .hardwareAddress(type: 1, self.stranger), records: [:]) == nil)
        #expect(renderer.pxelinuxConfig(for: .ipAddressPrefix("C0"), records: [:]) == nil)
        let installed = [self.node.description: InstallRecord(completedInstalls: 1, request: "", completedAt: 0)]
        #expect(renderer.pxelinuxConfig(for: .hardwareAddress(type: 1, self.node), records: installed) == local)
    }

    @Test func strangersBootLocallyUnlessAGroupNamesTheirMAC() throws {
        let inventory = try BootInventory(
            profiles: [BootProfile(name: "p", kernel: "k")],
            groups: [
                BootGroup(name: "default", profile: "p"),
                BootGroup(name: "one", profile: "p", selector: MachineSelector(hardwareAddress: self.stranger)),
            ],
            machines: [Machine(name: "node1", hardwareAddress: self.node, uuid: self.uuid)]
        )
        #expect(inventory.machine(hardwareAddress: self.node, uuid: nil)?.name == "node1")
        #expect(inventory.machine(hardwareAddress: nil, uuid: self.uuid)?.name == "node1")
        let named = try #require(inventory.machine(hardwareAddress: self.stranger, uuid: nil))
        #expect(named.name.isEmpty && inventory.group(for: named).name == "one")
        #expect(inventory.machine(hardwareAddress: HardwareAddress("02:00:00:00:00:01")!, uuid: nil) == nil)
        let renderer = BootFileRenderer(
            inventory: inventory,
            httpBase: "http://192.0.2.10",
            serverAddress: "192.0.2.10"
        )
        guard
            case .rendered(let script) = renderer.ipxeScript(
                hardwareAddress: HardwareAddress("02:00:00:00:00:01")!,
                uuid: nil,
                records: [:]
            )
        else { return #expect(Bool(false)) }
        #expect(script.contains("exit") && !script.contains("kernel"))
        #expect(renderer.httpBase == "http://192.0.2.10")
    }

    @Test func reinstallRequestOverridesACompletedInstall() throws {
        let record = InstallRecord(completedInstalls: 1, request: "", completedAt: 0)
        var machine = Machine(name: "m", hardwareAddress: self.node)
        #expect(BootFileRenderer.installState(of: machine, record: nil) == .install)
        #expect(BootFileRenderer.installState(of: machine, record: record) == .localBoot)
        machine.reinstallRequest = "2026-11-26"
        #expect(BootFileRenderer.installState(of: machine, record: record) == .install)
        machine.installState = .localBoot
        #expect(BootFileRenderer.installState(of: machine, record: nil) == .localBoot)
        #expect(BootFileRenderer.instanceID(of: self.node, record: nil) == "portico-525400123456-1")
        #expect(BootFileRenderer.instanceID(of: self.node, record: record) == "portico-525400123456-2")
    }

    @Test func ipxeScriptsChainByMACAndBootTheInstallerOrTheDisk() throws {
        let renderer = try self.renderer()
        #expect(renderer.chainScript.contains("chain http://192.0.2.10:8080/netboot/${mac:hexhyp}/boot.ipxe"))
        let script = renderer.ipxeScript(hardwareAddress: self.node, uuid: nil, records: [:])
        #expect(
            script
                == .rendered(
                    "#!ipxe\nkernel http://192.0.2.10:8080/assets/fedora/vmlinuz initrd=initrd.img inst.ks=http://192.0.2.10:8080/netboot/52-54-00-12-34-56/kickstart console=ttyS0\ninitrd http://192.0.2.10:8080/assets/fedora/initrd.img\nboot\n"
                )
        )
        guard
            case .rendered(let stranger) = renderer.ipxeScript(hardwareAddress: self.stranger, uuid: nil, records: [:])
        else { return #expect(Bool(false)) }
        #expect(stranger.contains("exit"))
    }

    @Test func answerFilesAndNoCloudMetaData() throws {
        let renderer = try self.renderer(profileTemplates: ["user-data": "#cloud-config\nautoinstall:\n  version: 1\n"])
        #expect(
            renderer.answerFile(named: "kickstart", hardwareAddress: self.node, records: [:])
                == .rendered("network --hostname=node1\ndisk sda\n")
        )
        #expect(
            renderer.answerFile(named: "meta-data", hardwareAddress: self.node, records: [:])
                == .rendered("instance-id: portico-525400123456-1\nlocal-hostname: node1\n")
        )
        #expect(renderer.answerFile(named: "vendor-data", hardwareAddress: self.node, records: [:]) == .rendered(""))
        #expect(renderer.answerFile(named: "preseed", hardwareAddress: self.node, records: [:]) == .noSuchTemplate)
        #expect(
            renderer.answerFile(named: "kickstart", hardwareAddress: self.stranger, records: [:]) == .unknownMachine
        )
    }

    @Test func problemsNameTheMachineTemplateAndPosition() throws {
        let renderer = try self.renderer(
            machine: Machine(name: "default/bare", hardwareAddress: self.node),
            profileTemplates: [
                "preseed": "d-i passwd/user-fullname string\nd-i netcfg/get_hostname string {{hostname}}\n"
            ]
        )
        let problems = renderer.problems()
        let undefined = problems.map { "\($0.source) \($0.machine) \($0.kind)" }
        #expect(undefined.contains { $0.hasPrefix("templates.kickstart default/bare") && $0.contains("hostname") })
        #expect(
            problems.contains {
                $0.source == "templates.preseed" && $0.kind == .undefined(name: "hostname", line: 2, column: 32)
            }
        )
        #expect(problems.count == 2)
    }
}

@Suite struct InstallLedgerTests {
    let node = HardwareAddress("52:54:00:12:34:56")!

    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("portico-ledger-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func completionsArePersistedAndReadBack() throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try InstallLedger(stateDirectory: directory)
        #expect(ledger.record(for: self.node) == nil)
        try ledger.recordCompletion(of: self.node, request: "", now: 100)
        let second = try ledger.recordCompletion(of: self.node, request: "again", now: 200)
        #expect(second == InstallRecord(completedInstalls: 2, request: "again", completedAt: 200))
        let reread = try InstallLedger(stateDirectory: directory)
        #expect(reread.record(for: self.node) == second)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(leftovers == [InstallLedger.fileName])
    }

    @Test func aCorruptLedgerIsAnErrorNotAFreshStart() throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: directory + "/" + InstallLedger.fileName))
        #expect(throws: InstallLedgerError.self) { try InstallLedger(stateDirectory: directory) }
    }

    @Test func withoutAStateDirectoryTheLedgerIsInMemory() throws {
        let ledger = try InstallLedger(stateDirectory: nil)
        try ledger.recordCompletion(of: self.node, request: "", now: 1)
        #expect(ledger.record(for: self.node)?.completedInstalls == 1)
    }
}
