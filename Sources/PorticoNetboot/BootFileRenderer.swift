/// Renders the files a machine boots with from its profile's templates: its pxelinux menu,
/// its iPXE script, and its answer files (kickstart, preseed, cloud-init user-data and
/// meta-data, or any other template). Built once per plan; pure and stateless: the install
/// records are passed in.
///
/// Every template sees the machine's variables (the group's, then the machine's own) over
/// these built-in ones: `mac` (`aa:bb:cc:dd:ee:ff`), `mac_hyphen`, `uuid`, `hostname`,
/// `machine`, `group`, `profile`, `server`, `http_base`, `kernel`, `kernel_url`, `initrd`
/// (comma-separated, as pxelinux wants), `initrd_urls` (a list), `kernel_args` (the rendered
/// arguments), `ipxe_url`, `kickstart_url`, `preseed_url`, `nocloud_url`, `callback_url`
/// and `instance_id` (changes with each install). `uuid` and `hostname` exist only when known.
public struct BootFileRenderer: Sendable {
    /// Template names with a meaning of their own: the pxelinux menu and the iPXE script.
    public static let pxelinuxTemplate = "pxelinux"
    /// The per-machine iPXE script's template name.
    public static let ipxeTemplate = "ipxe"

    /// The inventory.
    public let inventory: BootInventory
    /// `http://192.0.2.10:8080`: where the HTTP boot endpoints are, without a trailing slash.
    public let httpBase: String
    /// The server's address as machines reach it (`server`).
    public let serverAddress: String
    private let parsed: [String: ParsedProfile]

    /// One problem with a profile's templates.
    public struct Problem: Hashable, Sendable {
        /// The profile.
        public var profile: String
        /// Which template: `templates.kickstart`, `args[1]`, `kernel`, `initrd[0]`.
        public var source: String
        /// The machine it was rendered for; empty for parse errors.
        public var machine: String
        /// What is wrong.
        public var kind: Kind

        /// What is wrong.
        public enum Kind: Hashable, Sendable {
            /// The template does not parse.
            case parse(BootTemplate.ParseError)
            /// The template uses names the machine does not define, with the first use's
            /// position in the template (1-based line and column) when found.
            case undefined(name: String, line: Int?, column: Int?)
        }
    }

    private struct ParsedProfile: Sendable {
        var templates: [String: BootTemplate] = [:]
        var arguments: [BootTemplate] = []
        var kernel: BootTemplate?
        var initrds: [BootTemplate] = []
        var problems: [Problem] = []
    }

    private static let localBootPXELinux = "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n"
    private static let localBootIPXE = "#!ipxe\necho Booting the local disk\nexit\n"
    private static let defaultPXELinux = BootTemplate.trusted(
        "DEFAULT install\nLABEL install\n  KERNEL {{kernel}}\n  APPEND initrd={{initrd}} {{kernel_args}}\n"
    )
    private static let defaultIPXE = BootTemplate.trusted(
        "#!ipxe\nkernel {{kernel_url}}{{#initrd_names}} initrd={{.}}{{/initrd_names}} {{kernel_args}}\n"
            + "{{#initrd_urls}}initrd {{.}}\n{{/initrd_urls}}boot\n"
    )
    private static let defaultMetaData = BootTemplate.trusted(
        "instance-id: {{instance_id}}\n{{#hostname}}local-hostname: {{hostname}}\n{{/hostname}}"
    )

    /// A renderer for `inventory`, with HTTP boot at `httpBase`. Templates are parsed once here;
    /// parse errors are in ``parseProblems``.
    public init(inventory: BootInventory, httpBase: String, serverAddress: String) {
        self.inventory = inventory
        var base = httpBase
        while base.hasSuffix("/") { base.removeLast() }
        self.httpBase = base
        self.serverAddress = serverAddress
        var parsed: [String: ParsedProfile] = [:]
        for (name, profile) in inventory.profiles {
            var result = ParsedProfile()
            func parse(_ text: String, _ source: String) -> BootTemplate? {
                do {
                    return try BootTemplate(text)
                } catch {
                    result.problems.append(Problem(profile: name, source: source, machine: "", kind: .parse(error)))
                    return nil
                }
            }
            var templates: [String: BootTemplate] = [:]
            for (key, text) in profile.templates {
                if let template = parse(text, "templates.\(key)") { templates[key] = template }
            }
            var arguments: [BootTemplate] = []
            for (offset, argument) in profile.kernelArguments.enumerated() {
                if let template = parse(argument, "args[\(offset)]") { arguments.append(template) }
            }
            var initrds: [BootTemplate] = []
            for (offset, initrd) in profile.initrds.enumerated() {
                if let template = parse(initrd, "initrd[\(offset)]") { initrds.append(template) }
            }
            let kernel = parse(profile.kernel, "kernel")
            result.templates = templates
            result.arguments = arguments
            result.initrds = initrds
            result.kernel = kernel
            parsed[name] = result
        }
        self.parsed = parsed
    }

    /// Templates that do not parse, per profile.
    public var parseProblems: [Problem] {
        self.parsed.keys.sorted().flatMap { self.parsed[$0]!.problems }
    }

    // MARK: - state

    /// Whether `machine` installs now: it is asked to, and has not reported an install
    /// complete since its reinstall request last changed.
    public static func installState(of machine: Machine, record: InstallRecord?) -> InstallState {
        guard machine.installState == .install else { return .localBoot }
        if let record, record.request == machine.reinstallRequest { return .localBoot }
        return .install
    }

    /// The instance-id of the machine's next (or current) install.
    public static func instanceID(of hardwareAddress: HardwareAddress, record: InstallRecord?) -> String {
        "portico-\(hardwareAddress.formatted(separator: ""))-\((record?.completedInstalls ?? 0) + 1)"
    }

    // MARK: - rendering

    /// A rendered file, or why there is none.
    public enum Outcome: Hashable, Sendable {
        /// The file.
        case rendered(String)
        /// No machine with this MAC or UUID is declared or selected by a group.
        case unknownMachine
        /// The machine's profile has no template by this name.
        case noSuchTemplate
        /// The template uses names the machine does not define (check reports this too).
        case undefined([String])
    }

    /// The variables every template of `assignment` sees.
    public func variables(for assignment: BootAssignment, record: InstallRecord?) -> [String: TemplateValue] {
        let machine = assignment.machine
        let profile = assignment.profile
        let mac = machine.hardwareAddress
        let nocloud = "\(self.httpBase)/nocloud/\(mac.formatted(separator: "-"))/"
        let perMachine = "\(self.httpBase)/netboot/\(mac.formatted(separator: "-"))"
        var builtIn: [String: TemplateValue] = [
            "mac": .string(mac.formatted()),
            "mac_hyphen": .string(mac.formatted(separator: "-")),
            "machine": .string(machine.name),
            "group": .string(assignment.group.name),
            "profile": .string(profile.name),
            "server": .string(self.serverAddress),
            "http_base": .string(self.httpBase),
            "ipxe_url": .string("\(perMachine)/boot.ipxe"),
            "kickstart_url": .string("\(perMachine)/kickstart"),
            "preseed_url": .string("\(perMachine)/preseed"),
            "nocloud_url": .string(nocloud),
            "callback_url": .string("\(perMachine)/installed"),
            "instance_id": .string(Self.instanceID(of: mac, record: record)),
        ]
        if let uuid = machine.uuid { builtIn["uuid"] = .string(uuid.description) }
        if let hostname = machine.hostname { builtIn["hostname"] = .string(hostname) }
        var variables = builtIn.merging(assignment.variables) { $1 }
        let parsed = self.parsed[profile.name] ?? ParsedProfile()
        let kernel = parsed.kernel?.render(variables).text ?? profile.kernel
        let initrds = parsed.initrds.map { $0.render(variables).text }
        variables["kernel"] = variables["kernel"] ?? .string(kernel)
        variables["kernel_url"] = variables["kernel_url"] ?? .string(self.url(of: kernel))
        variables["initrd"] = variables["initrd"] ?? .string(initrds.joined(separator: ","))
        variables["initrd_urls"] = variables["initrd_urls"] ?? .list(initrds.map { .string(self.url(of: $0)) })
        variables["initrd_names"] =
            variables["initrd_names"]
            ?? .list(initrds.map { .string(String($0.split(separator: "/").last ?? Substring($0))) })
        let arguments = parsed.arguments.map { $0.render(variables).text }
        variables["kernel_args"] = variables["kernel_args"] ?? .string(arguments.joined(separator: " "))
        return variables
    }

    /// An asset path as a URL: itself when it is one, else under `/assets/`.
    public func url(of path: String) -> String {
        if path.contains("://") { return path }
        var relative = Substring(path)
        while relative.hasPrefix("/") { relative = relative.dropFirst() }
        return "\(self.httpBase)/assets/\(relative)"
    }

    /// The `pxelinux.cfg` file for `name`: a declared machine's menu while it installs, local
    /// boot once installed and for `default`; `nil` for other names, so pxelinux moves on.
    public func pxelinuxConfig(for name: PXELinuxConfigName, records: [String: InstallRecord]) -> Outcome? {
        let machine: Machine?
        switch name {
        case .default: return .rendered(Self.localBootPXELinux)
        case .ipAddressPrefix: return nil
        case .uuid(let uuid): machine = self.inventory.machine(uuid: uuid)
        case .hardwareAddress(let type, let address):
            machine = type == 1 ? self.inventory.machine(hardwareAddress: address, uuid: nil) : nil
        }
        guard let machine else { return nil }
        let record = records[machine.hardwareAddress.description]
        guard Self.installState(of: machine, record: record) == .install else {
            return .rendered(Self.localBootPXELinux)
        }
        return self.render(Self.pxelinuxTemplate, fallback: Self.defaultPXELinux, machine: machine, record: record)
    }

    /// `/boot.ipxe`: chains to the machine's own script by its MAC (and UUID).
    public var chainScript: String {
        "#!ipxe\nchain \(self.httpBase)/netboot/${mac:hexhyp}/boot.ipxe?uuid=${uuid}\n"
    }

    /// The machine's iPXE script: its profile's kernel, initrds and arguments (or its `ipxe`
    /// template) while it installs; `exit` (boot the next device: the local disk) otherwise,
    /// and for unknown machines.
    public func ipxeScript(
        hardwareAddress: HardwareAddress,
        uuid: ClientUUID?,
        records: [String: InstallRecord]
    ) -> Outcome {
        guard let machine = self.inventory.machine(hardwareAddress: hardwareAddress, uuid: uuid) else {
            return .rendered(Self.localBootIPXE)
        }
        let record = records[machine.hardwareAddress.description]
        guard Self.installState(of: machine, record: record) == .install else { return .rendered(Self.localBootIPXE) }
        return self.render(Self.ipxeTemplate, fallback: Self.defaultIPXE, machine: machine, record: record)
    }

    /// The answer file `name` (a template of the machine's profile). `meta-data` has a default
    /// (instance-id and hostname); `vendor-data` is empty unless the profile has one.
    public func answerFile(
        named name: String,
        hardwareAddress: HardwareAddress,
        records: [String: InstallRecord]
    ) -> Outcome {
        guard let machine = self.inventory.machine(hardwareAddress: hardwareAddress, uuid: nil) else {
            return .unknownMachine
        }
        let record = records[machine.hardwareAddress.description]
        switch name {
        case "meta-data": return self.render(name, fallback: Self.defaultMetaData, machine: machine, record: record)
        case "vendor-data":
            return self.render(name, fallback: BootTemplate.trusted(""), machine: machine, record: record)
        default: return self.render(name, fallback: nil, machine: machine, record: record)
        }
    }

    private func render(_ name: String, fallback: BootTemplate?, machine: Machine, record: InstallRecord?) -> Outcome {
        let assignment = self.inventory.assignment(for: machine)
        guard let template = self.parsed[assignment.profile.name]?.templates[name] ?? fallback else {
            return .noSuchTemplate
        }
        let rendering = template.render(self.variables(for: assignment, record: record))
        return rendering.missing.isEmpty ? .rendered(rendering.text) : .undefined(rendering.missing)
    }

    // MARK: - validation

    /// Renders every template of every declared machine's profile (and of machines only named
    /// by a group's MAC selector) and reports each name a machine does not define, once per
    /// template and machine, plus the parse errors.
    public func problems() -> [Problem] {
        var problems = self.parseProblems
        var machines = self.inventory.machines
        for group in self.inventory.groups {
            if let address = group.selector.hardwareAddress, self.inventory.machine(hardwareAddress: address) == nil {
                machines.append(Machine(name: "", hardwareAddress: address, uuid: group.selector.uuid))
            }
        }
        for machine in machines {
            let assignment = self.inventory.assignment(for: machine)
            guard let parsed = self.parsed[assignment.profile.name] else { continue }
            let variables = self.variables(for: assignment, record: nil)
            let label = machine.name.isEmpty ? machine.hardwareAddress.description : machine.name
            var sources: [(String, BootTemplate)] = parsed.templates.sorted { $0.key < $1.key }.map {
                ("templates.\($0.key)", $0.value)
            }
            sources += parsed.arguments.enumerated().map { ("args[\($0.offset)]", $0.element) }
            if let kernel = parsed.kernel { sources.append(("kernel", kernel)) }
            sources += parsed.initrds.enumerated().map { ("initrd[\($0.offset)]", $0.element) }
            for (source, template) in sources {
                for name in template.render(variables).missing {
                    let position = template.position(of: name)
                    problems.append(
                        Problem(
                            profile: assignment.profile.name,
                            source: source,
                            machine: label,
                            kind: .undefined(name: name, line: position?.line, column: position?.column)
                        )
                    )
                }
            }
        }
        return problems
    }
}

extension BootTemplate {
    /// A template written in this module, known to parse.
    static func trusted(_ text: String) -> BootTemplate {
        // The built-in templates are constants covered by tests.
        try! BootTemplate(text)
    }
}
