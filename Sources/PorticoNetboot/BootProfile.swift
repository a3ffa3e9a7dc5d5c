/// What to boot and the answer files to render for it (matchbox's profile).
public struct BootProfile: Hashable, Sendable {
    /// Unique name, referenced by groups.
    public var name: String
    /// Kernel path or URL.
    public var kernel: String
    /// Initrd paths or URLs, in order.
    public var initrds: [String]
    /// Kernel command-line arguments (may contain template placeholders).
    public var kernelArguments: [String]
    /// Answer-file templates by the name they are served under (`kickstart`, `user-data`,
    /// `meta-data`, `preseed`, `boot.ipxe`, ...). Rendering is done elsewhere.
    public var templates: [String: String]

    /// A profile.
    public init(
        name: String,
        kernel: String,
        initrds: [String] = [],
        kernelArguments: [String] = [],
        templates: [String: String] = [:]
    ) {
        self.name = name
        self.kernel = kernel
        self.initrds = initrds
        self.kernelArguments = kernelArguments
        self.templates = templates
    }
}

/// Which machines a group applies to. Every given field must match; an empty selector
/// matches every machine and marks the default group.
public struct MachineSelector: Hashable, Sendable {
    /// The machine's MAC.
    public var hardwareAddress: HardwareAddress?
    /// The machine's SMBIOS UUID.
    public var uuid: ClientUUID?
    /// The machine's host name.
    public var hostname: String?
    /// Labels the machine must carry, each with this value.
    public var labels: [String: String]

    /// A selector.
    public init(
        hardwareAddress: HardwareAddress? = nil,
        uuid: ClientUUID? = nil,
        hostname: String? = nil,
        labels: [String: String] = [:]
    ) {
        self.hardwareAddress = hardwareAddress
        self.uuid = uuid
        self.hostname = hostname
        self.labels = labels
    }

    /// Whether this selector matches everything (the default group's).
    public var isEmpty: Bool {
        self.hardwareAddress == nil && self.uuid == nil && self.hostname == nil && self.labels.isEmpty
    }

    /// Whether `machine` has every property this selector names.
    public func matches(_ machine: Machine) -> Bool {
        if let hardwareAddress = self.hardwareAddress, hardwareAddress != machine.hardwareAddress { return false }
        if let uuid = self.uuid, uuid != machine.uuid { return false }
        if let hostname = self.hostname, hostname.lowercased() != machine.hostname?.lowercased() { return false }
        return self.labels.allSatisfy { machine.labels[$0.key] == $0.value }
    }

    /// How specific the selector is, compared lexicographically: identity selectors (MAC,
    /// UUID), then host name, then the number of labels.
    var specificity: [Int] {
        [
            (self.hardwareAddress == nil ? 0 : 1) + (self.uuid == nil ? 0 : 1), self.hostname == nil ? 0 : 1,
            self.labels.count,
        ]
    }
}

/// Machines selected together and the profile they boot (matchbox's group).
public struct BootGroup: Hashable, Sendable {
    /// Unique name.
    public var name: String
    /// The profile's name.
    public var profile: String
    /// Which machines belong; empty for the default group.
    public var selector: MachineSelector
    /// Template variables for the group's machines (a machine's own variables win).
    public var variables: [String: TemplateValue]

    /// A group.
    public init(
        name: String,
        profile: String,
        selector: MachineSelector = MachineSelector(),
        variables: [String: TemplateValue] = [:]
    ) {
        self.name = name
        self.profile = profile
        self.selector = selector
        self.variables = variables
    }
}

/// Whether a machine should install on its next network boot.
public enum InstallState: String, Hashable, Sendable {
    /// Boot the installer with its answer files.
    case install
    /// Boot the local disk (after the installer called back, or by choice).
    case localBoot
}

/// A known machine.
public struct Machine: Hashable, Sendable {
    /// Its name in the manifests (empty for a machine known only by a group's selector).
    public var name: String
    /// Its MAC (the key it is known by).
    public var hardwareAddress: HardwareAddress
    /// Its SMBIOS UUID, when known.
    public var uuid: ClientUUID?
    /// Its host name.
    public var hostname: String?
    /// Labels groups can select on.
    public var labels: [String: String]
    /// Template variables (SSH keys, disk, password hash, ...).
    public var variables: [String: TemplateValue]
    /// Install or boot the local disk, as the manifests ask; an install the machine reported
    /// complete (recorded in the state directory) turns `install` into local boot.
    public var installState: InstallState
    /// Any text; changing it asks for a new install although the last one completed.
    public var reinstallRequest: String

    /// A machine.
    public init(
        name: String = "",
        hardwareAddress: HardwareAddress,
        uuid: ClientUUID? = nil,
        hostname: String? = nil,
        labels: [String: String] = [:],
        variables: [String: TemplateValue] = [:],
        installState: InstallState = .install,
        reinstallRequest: String = ""
    ) {
        self.name = name
        self.reinstallRequest = reinstallRequest
        self.hardwareAddress = hardwareAddress
        self.uuid = uuid
        self.hostname = hostname
        self.labels = labels
        self.variables = variables
        self.installState = installState
    }
}
