import Foundation
import PorticoModel
import PorticoNetboot
import PorticoPlan
import Testing

private func plan(_ text: String) -> Plan {
    PlanBuilder.plan(for: ManifestLoader.load(texts: [("boot.yaml", text)], now: 1_800_000_000))
}

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private let profile = """
    apiVersion: portico.dev/v1alpha1
    kind: BootProfile
    metadata: {name: debian}
    spec:
      kernel: debian/linux
      initrd: debian/initrd.gz
      args: [auto=true, priority=critical, "url={{preseed_url}}"]
      templates:
        preseed: |
          d-i netcfg/get_hostname string {{hostname}}
          d-i partman-auto/disk string /dev/{{disk}}
    ---
    apiVersion: portico.dev/v1alpha1
    kind: MachineGroup
    metadata: {name: all}
    spec:
      profile: debian
      variables: {disk: sda}
    ---
    apiVersion: portico.dev/v1alpha1
    kind: NetbootSettings
    metadata: {name: netboot}
    spec:
      serverAddress: 192.0.2.10
      interface: eth1
      http: {port: 8081}
      tftp: {port: 6969, maximumWindowSize: 8}
    """

@Suite struct NetbootPlanTests {
    @Test func theHomelabMenuAndKickstartAreReproducedByteForByte() throws {
        let examples = repository.appendingPathComponent("examples/netboot")
        let plan = PlanBuilder.plan(
            for: ManifestLoader.load(paths: [examples.appendingPathComponent("netboot.yaml").path])
        )
        #expect(!plan.diagnostics.containsErrors, "\(plan.diagnostics)")
        let configuration = try #require(plan.netboot?.configuration)
        #expect(configuration.httpBase == "http://192.168.1.10:8080")
        let renderer = BootFileRenderer(
            inventory: configuration.inventory,
            httpBase: configuration.httpBase,
            serverAddress: configuration.serverAddress.description
        )
        let node = try #require(HardwareAddress("52:54:00:12:34:56"))
        let menu = try String(
            contentsOf: examples.appendingPathComponent("expected/pxelinux.cfg-01-52-54-00-12-34-56"),
            encoding: .utf8
        )
        let kickstart = try String(
            contentsOf: examples.appendingPathComponent("expected/kickstart-k8s-node-1.cfg"),
            encoding: .utf8
        )
        #expect(renderer.pxelinuxConfig(for: .hardwareAddress(type: 1, node), records: [:]) == .rendered(menu))
        #expect(renderer.answerFile(named: "kickstart", hardwareAddress: node, records: [:]) == .rendered(kickstart))
        guard
            case .rendered(let second) = renderer.answerFile(
                named: "kickstart",
                hardwareAddress: HardwareAddress("52:54:00:12:34:57")!,
                records: [:]
            )
        else { return #expect(Bool(false)) }
        #expect(second.contains("ignoredisk --only-use=nvme0n1\n") && second.contains("--hostname=k8s-node-2\n"))
    }

    @Test func anUndefinedVariableIsAnErrorAtItsPositionInTheTemplate() {
        let result = plan(
            profile + """

                ---
                apiVersion: portico.dev/v1alpha1
                kind: Machine
                metadata: {name: web1}
                spec: {mac: "52:54:00:00:00:01"}
                """
        )
        let errors = result.diagnostics.filter { $0.severity == .error }.map(\.description)
        #expect(
            errors == [
                "boot.yaml:10:38: error: BootProfile default/debian: spec.templates.preseed: {{hostname}} is not defined for Machine default/web1; templates must not render an undefined variable: define it in spec.variables of the Machine or its MachineGroup"
            ]
        )
    }

    @Test func aCompletePlanHasTheServersAndMachines() throws {
        let result = plan(
            profile + """

                ---
                apiVersion: portico.dev/v1alpha1
                kind: Machine
                metadata: {name: web1, labels: {role: web}}
                spec: {mac: "52:54:00:00:00:01", hostname: web1, boot: local, reinstall: "2"}
                """
        )
        #expect(!result.diagnostics.containsErrors, "\(result.diagnostics)")
        let configuration = try #require(result.netboot?.configuration)
        #expect(configuration.http.port == 8081 && configuration.tftp.port == 6969)
        #expect(configuration.tftpLimits.maximumWindowSize == 8)
        #expect(configuration.interface == "eth1")
        #expect(configuration.bootLoaderDirectories == NetbootConfiguration.debianBootLoaderDirectories)
        let machine = try #require(configuration.inventory.machines.first)
        #expect(machine.installState == .localBoot && machine.reinstallRequest == "2")
        #expect(machine.labels == ["role": "web"])
        let document = PlanDocument(result)
        #expect(document.netboot?.machines.first?.boot == "local")
        #expect(document.netboot?.servers?.httpBase == "http://192.0.2.10:8081")
        let text = PlanText.render(result)
        #expect(text.contains("Network boot"))
        #expect(text.contains("default/web1  52:54:00:00:00:01  web1      default/all  default/debian  local"))
    }

    @Test func structuralErrorsNameFileLineFieldAndRule() {
        let result = plan(
            """
            apiVersion: portico.dev/v1alpha1
            kind: MachineGroup
            metadata: {name: one}
            spec: {profile: missing}
            ---
            apiVersion: portico.dev/v1alpha1
            kind: BootProfile
            metadata: {name: p}
            spec: {kernel: k, templates: {"bad/name": x, ok: "{{#open}}"}}
            ---
            apiVersion: portico.dev/v1alpha1
            kind: MachineGroup
            metadata: {name: two}
            spec: {profile: p}
            ---
            apiVersion: portico.dev/v1alpha1
            kind: MachineGroup
            metadata: {name: three}
            spec: {profile: p, selector: {}}
            ---
            apiVersion: portico.dev/v1alpha1
            kind: Machine
            metadata: {name: a}
            spec: {mac: "52:54:00:zz:00:01", boot: reinstall}
            ---
            apiVersion: portico.dev/v1alpha1
            kind: Machine
            metadata: {name: b}
            spec: {mac: 52-54-00-00-00-02, uuid: nope}
            ---
            apiVersion: portico.dev/v1alpha1
            kind: Machine
            metadata: {name: c}
            spec: {mac: 52:54:00:00:00:02}
            ---
            apiVersion: portico.dev/v1alpha1
            kind: NetbootSettings
            metadata: {name: s}
            spec: {serverAddress: "2001:db8::1", dhcp: {port: 70000}}
            """
        )
        let lines = result.diagnostics.map(\.description)
        let expected = [
            "boot.yaml:4:17: error: MachineGroup default/one: spec.profile: BootProfile default/missing does not exist",
            "boot.yaml:9:43: error: BootProfile default/p: spec.templates.bad/name: \"bad/name\" is not a template name",
            "boot.yaml:9:",
            "error: BootProfile default/p: spec.templates.ok: the template does not parse: a section is opened but never closed",
            "boot.yaml:19:30: error: MachineGroup default/three: spec.selector: MachineGroup default/two is already the default group",
            "boot.yaml:24:13: error: Machine default/a: spec.mac: \"52:54:00:zz:00:01\" is not a MAC address",
            "boot.yaml:24:40: error: Machine default/a: spec.boot: \"reinstall\" is not a boot choice",
            "boot.yaml:29:38: error: Machine default/b: spec.uuid: \"nope\" is not a UUID",
            "boot.yaml:34:13: error: Machine default/c: spec.mac: 52:54:00:00:00:02 is already the MAC of Machine default/b",
            "boot.yaml:39:23: error: NetbootSettings default/s: spec.serverAddress: \"2001:db8::1\" is not an IPv4 address",
            "boot.yaml:39:51: error: NetbootSettings default/s: spec.dhcp.port: 70000 is not a port",
        ]
        for fragment in expected {
            #expect(lines.contains { $0.contains(fragment) }, "missing \(fragment) in \(lines.joined(separator: "\n"))")
        }
        #expect(result.netboot?.configuration == nil)
    }

    @Test func profilesWithoutSettingsArePlannedButNotServed() {
        let result = plan(
            """
            apiVersion: portico.dev/v1alpha1
            kind: BootProfile
            metadata: {name: p}
            spec: {kernel: k}
            """
        )
        #expect(!result.diagnostics.containsErrors)
        #expect(result.diagnostics.contains { $0.message.contains("there is no NetbootSettings resource") })
        #expect(result.netboot?.configuration == nil)
    }

    @Test func malformedResourcesAreErrorsNotCrashes() {
        let specs = [
            "kind: BootProfile\nmetadata: {name: a}\nspec: [1, 2]",
            "kind: BootProfile\nmetadata: {name: a}\nspec: {kernel: [x], initrd: {a: b}, args: x, templates: [y]}",
            "kind: BootProfile\nmetadata: {name: a}\nspec: {kernel: 5, templates: {t: \"{{\"}}}",
            "kind: MachineGroup\nmetadata: {name: g}\nspec: {profile: [p], selector: [], variables: [1]}",
            "kind: MachineGroup\nmetadata: {name: g}\nspec: {profile: p, variables: {a: null, 1x: y, b: {c: [null]}}}",
            "kind: Machine\nmetadata: {name: m}\nspec: {mac: 12, uuid: 7, hostname: \"-bad-\", boot: true}",
            "kind: Machine\nmetadata: {name: m}\nspec: {mac: \"52:54:00:00:00:01:02\", variables: x}",
            "kind: Machine\nmetadata: {name: m}",
            "kind: NetbootSettings\nmetadata: {name: s}\nspec: {serverAddress: x, tftp: {maximumBlockSize: 1}}",
            "kind: NetbootSettings\nmetadata: {name: s}\nspec: {serverAddress: 10.0.0.1, interface: \"a b\", http: 80}",
        ]
        for spec in specs {
            let result = plan("apiVersion: portico.dev/v1alpha1\n" + spec)
            #expect(result.diagnostics.containsErrors, "no error for: \(spec)")
            #expect(result.netboot?.configuration == nil)
            for diagnostic in result.diagnostics where diagnostic.severity == .error {
                #expect(diagnostic.location.file == "boot.yaml" && diagnostic.location.line >= 1)
            }
        }
    }
}
