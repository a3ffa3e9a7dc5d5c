import PorticoModel
public import PorticoNetboot

/// The network boot part of a plan.
public struct NetbootPlan: Sendable {
    /// What the boot servers run with; `nil` when they are not started (no NetbootSettings,
    /// no profile, or errors).
    public var configuration: NetbootConfiguration?
    /// Profiles, groups and machines (also without settings, for `plan` and `check`).
    public var inventory: BootInventory?
    /// Machines as the plan shows them.
    public var machines: [NetbootMachineEntry] = []
    /// Groups as the plan shows them, most specific first.
    public var groups: [NetbootGroupEntry] = []

    public init() {}
}

/// A machine in the plan.
public struct NetbootMachineEntry: Sendable, Hashable, Codable {
    public var name: String
    public var mac: String
    public var uuid: String?
    public var hostname: String?
    public var group: String
    public var profile: String
    /// `install` or `local`, as the manifests ask (a completed install turns install into local).
    public var boot: String
}

/// A machine group in the plan.
public struct NetbootGroupEntry: Sendable, Hashable, Codable {
    public var name: String
    public var profile: String
    /// `mac=..., labels=...`, or `(default)`.
    public var selector: String
}

extension PlanBuilder {
    /// Shows in the plan which machines reported a completed install (the state directory's
    /// install ledger): their `boot` becomes `local (installed)` while their reinstall request
    /// is unchanged.
    public static func recordInstalls(_ records: [String: InstallRecord], in plan: inout Plan) {
        guard var netboot = plan.netboot, let inventory = netboot.inventory else { return }
        for index in netboot.machines.indices {
            let entry = netboot.machines[index]
            guard let machine = inventory.machines.first(where: { $0.hardwareAddress.description == entry.mac }),
                machine.installState == .install,
                BootFileRenderer.installState(of: machine, record: records[entry.mac]) == .localBoot
            else { continue }
            netboot.machines[index].boot = "local (installed)"
        }
        plan.netboot = netboot
    }

    static func buildNetboot(_ manifests: Manifests, _ plan: inout Plan) {
        guard
            !(manifests.bootProfiles.isEmpty && manifests.machineGroups.isEmpty && manifests.machines.isEmpty
                && manifests.netbootSettings.isEmpty)
        else { return }
        var diagnostics: [Diagnostic] = []
        var netboot = NetbootPlan()
        let profiles = manifests.bootProfiles.compactMap { resource -> BootProfile? in
            guard let kernel = resource.kernel else { return nil }
            return BootProfile(
                name: resource.metadata.key,
                kernel: kernel.text,
                initrds: resource.initrds.map(\.text),
                kernelArguments: resource.arguments.map(\.text),
                templates: resource.templates.mapValues(\.text)
            )
        }
        let profileNames = Set(profiles.map(\.name))
        var groups: [BootGroup] = []
        var defaultGroup: MachineGroupResource?
        var selectors: [MachineSelector: MachineGroupResource] = [:]
        for resource in manifests.machineGroups.sorted(by: { $0.metadata.location < $1.metadata.location }) {
            let subject = "MachineGroup \(resource.metadata.key)"
            let profile = "\(resource.metadata.namespace)/\(resource.profile)"
            guard !resource.profile.isEmpty else { continue }
            guard profileNames.contains(profile) else {
                if !manifests.bootProfiles.contains(where: { $0.metadata.key == profile }) {
                    diagnostics.append(
                        .error(
                            at: resource.profileLocation,
                            "\(subject): spec.profile: BootProfile \(profile) does not exist"
                        )
                    )
                }
                continue
            }
            let selector = MachineSelector(
                hardwareAddress: resource.selector.mac.flatMap { HardwareAddress($0) },
                uuid: resource.selector.uuid.flatMap { ClientUUID($0) },
                hostname: resource.selector.hostname,
                labels: resource.selector.labels
            )
            if let other = selectors[selector] {
                diagnostics.append(
                    .error(
                        at: resource.selectorLocation,
                        selector.isEmpty
                            ? "\(subject): spec.selector: MachineGroup \(other.metadata.key) is already the default group (no selector); only one group may be the default"
                            : "\(subject): spec.selector: MachineGroup \(other.metadata.key) has the same selector; which one wins would be arbitrary"
                    )
                )
                continue
            }
            selectors[selector] = resource
            if selector.isEmpty { defaultGroup = resource }
            groups.append(
                BootGroup(
                    name: resource.metadata.key,
                    profile: profile,
                    selector: selector,
                    variables: resource.variables.mapValues(Self.templateValue)
                )
            )
        }
        var machines: [Machine] = []
        var macs: [HardwareAddress: MachineResource] = [:]
        for resource in manifests.machines.sorted(by: { $0.metadata.location < $1.metadata.location }) {
            guard let address = HardwareAddress(resource.mac) else { continue }
            if let other = macs[address] {
                diagnostics.append(
                    .error(
                        at: resource.macLocation,
                        "Machine \(resource.metadata.key): spec.mac: \(address) is already the MAC of Machine \(other.metadata.key)"
                    )
                )
                continue
            }
            macs[address] = resource
            machines.append(
                Machine(
                    name: resource.metadata.key,
                    hardwareAddress: address,
                    uuid: resource.uuid.flatMap { ClientUUID($0) },
                    hostname: resource.hostname,
                    labels: resource.metadata.labels,
                    variables: resource.variables.mapValues(Self.templateValue),
                    installState: resource.boot == .local ? .localBoot : .install,
                    reinstallRequest: resource.reinstall
                )
            )
        }
        // Without a default group, every declared machine must be selected by some group.
        if defaultGroup == nil {
            for machine in machines where !groups.contains(where: { $0.selector.matches(machine) }) {
                let resource = macs[machine.hardwareAddress]!
                diagnostics.append(
                    .error(
                        at: resource.metadata.location,
                        "Machine \(resource.metadata.key): no MachineGroup selects this machine and there is no default group (a MachineGroup without selector); add one, or a group whose selector matches"
                    )
                )
            }
        }
        if let first = profiles.first, defaultGroup == nil {
            // Never used when the checks above pass: every machine matches a declared group.
            groups.append(BootGroup(name: "(no default group)", profile: first.name))
        }
        if !profiles.isEmpty, let inventory = try? BootInventory(profiles: profiles, groups: groups, machines: machines)
        {
            netboot.inventory = inventory
            let renderer = BootFileRenderer(
                inventory: inventory,
                httpBase: "http://192.0.2.1:8080",
                serverAddress: "192.0.2.1"
            )
            diagnostics += Self.templateDiagnostics(renderer.problems(), manifests)
            netboot.groups = inventory.groups.filter { $0.name != "(no default group)" }.map {
                NetbootGroupEntry(name: $0.name, profile: $0.profile, selector: Self.describe($0.selector))
            }
            netboot.machines = inventory.machines.map { machine in
                let assignment = inventory.assignment(for: machine)
                return NetbootMachineEntry(
                    name: machine.name,
                    mac: machine.hardwareAddress.description,
                    uuid: machine.uuid?.description,
                    hostname: machine.hostname,
                    group: assignment.group.name,
                    profile: assignment.profile.name,
                    boot: machine.installState == .install ? "install" : "local"
                )
            }
        }
        let settings = manifests.netbootSettings.sorted { $0.metadata.location < $1.metadata.location }
        for extra in settings.dropFirst() {
            diagnostics.append(
                .error(
                    at: extra.metadata.location,
                    "NetbootSettings \(extra.metadata.key): only one NetbootSettings may exist; the first is at \(settings[0].metadata.location)"
                )
            )
        }
        if let setting = settings.first {
            if profiles.isEmpty {
                diagnostics.append(
                    .warning(
                        at: setting.metadata.location,
                        "NetbootSettings \(setting.metadata.key): there is no BootProfile; the boot servers are not started"
                    )
                )
            } else if let inventory = netboot.inventory, let address = IPv4Address(setting.serverAddress) {
                netboot.configuration = Self.configuration(setting, address: address, inventory: inventory)
            }
        } else if let first = manifests.bootProfiles.first {
            diagnostics.append(
                .warning(
                    at: first.metadata.location,
                    "BootProfile \(first.metadata.key): there is no NetbootSettings resource; network boot is planned but not served"
                )
            )
        }
        plan.diagnostics += diagnostics
        plan.netboot = netboot
    }

    static func configuration(
        _ setting: NetbootSettingsResource,
        address: IPv4Address,
        inventory: BootInventory
    ) -> NetbootConfiguration {
        var limits = TFTPConfiguration()
        if let size = setting.maximumBlockSize { limits.maximumBlockSize = size }
        if let size = setting.maximumWindowSize { limits.maximumWindowSize = size }
        return NetbootConfiguration(
            serverAddress: address,
            dhcp: .init(host: setting.dhcp.address, port: setting.dhcp.port),
            bootServer: .init(host: setting.dhcp.address, port: setting.bootServerPort),
            dhcpClientPort: UInt16(setting.dhcpClientPort),
            interface: setting.interface,
            tftp: .init(host: setting.tftp.address, port: setting.tftp.port),
            http: .init(host: setting.http.address, port: setting.http.port),
            advertisedHTTPPort: setting.advertisedHTTPPort,
            assetsDirectory: setting.assetsDirectory,
            bootLoaderDirectories: setting.bootLoaderDirectories ?? NetbootConfiguration.debianBootLoaderDirectories,
            tftpLimits: limits,
            treatsFirmwareIPXEAsPlainPXE: setting.firmwareIPXEAsPlainPXE,
            inventory: inventory
        )
    }

    static func templateValue(_ value: VariableValue) -> TemplateValue {
        switch value {
        case .string(let text): .string(text)
        case .bool(let flag): .bool(flag)
        case .list(let values): .list(values.map(templateValue))
        case .map(let values): .map(values.mapValues(templateValue))
        }
    }

    static func describe(_ selector: MachineSelector) -> String {
        var parts: [String] = []
        if let mac = selector.hardwareAddress { parts.append("mac=\(mac)") }
        if let uuid = selector.uuid { parts.append("uuid=\(uuid)") }
        if let hostname = selector.hostname { parts.append("hostname=\(hostname)") }
        for (key, value) in selector.labels.sorted(by: { $0.key < $1.key }) { parts.append("\(key)=\(value)") }
        return parts.isEmpty ? "(default)" : parts.joined(separator: ",")
    }

    /// Template problems as diagnostics at the template's position in its manifest; one per
    /// template and undefined name, naming every machine concerned.
    static func templateDiagnostics(_ problems: [BootFileRenderer.Problem], _ manifests: Manifests) -> [Diagnostic] {
        var undefined: [String: (Diagnostic, [String])] = [:]
        var order: [String] = []
        var result: [Diagnostic] = []
        for problem in problems {
            guard let resource = manifests.bootProfiles.first(where: { $0.metadata.key == problem.profile }),
                let source = Self.source(problem.source, in: resource)
            else { continue }
            let subject = "BootProfile \(problem.profile): \(source.path)"
            switch problem.kind {
            case .parse(let error):
                result.append(
                    .error(
                        at: source.location(line: error.line, column: error.column),
                        "\(subject): the template does not parse: \(error.reason) (line \(error.line) of the template)"
                    )
                )
            case .undefined(let name, let line, let column):
                let key = "\(problem.profile)\u{0}\(problem.source)\u{0}\(name)"
                if var entry = undefined[key] {
                    entry.1.append(problem.machine)
                    undefined[key] = entry
                    continue
                }
                let location = line.map { source.location(line: $0, column: column ?? 1) } ?? source.location
                order.append(key)
                undefined[key] = (.error(at: location, "\(subject): {{\(name)}}"), [problem.machine])
            }
        }
        for key in order {
            let (diagnostic, machines) = undefined[key]!
            let list =
                machines.count > 3
                ? machines.prefix(3).joined(separator: ", ") + " and \(machines.count - 3) more"
                : machines.joined(separator: ", ")
            result.append(
                .error(
                    at: diagnostic.location,
                    "\(diagnostic.message) is not defined for \(machines.count == 1 ? "Machine" : "Machines") \(list); templates must not render an undefined variable: define it in spec.variables of the Machine or its MachineGroup"
                )
            )
        }
        return result
    }

    private static func source(_ name: String, in profile: BootProfileResource) -> TemplateSource? {
        if name == "kernel" { return profile.kernel }
        if name.hasPrefix("templates.") { return profile.templates[String(name.dropFirst("templates.".count))] }
        if let open = name.firstIndex(of: "["), let index = Int(name[name.index(after: open)...].dropLast()) {
            let list = name.hasPrefix("args") ? profile.arguments : profile.initrds
            return index < list.count ? list[index] : nil
        }
        return nil
    }
}
