/// Profiles, groups and known machines, validated together; answers which profile a
/// machine boots and which `pxelinux.cfg` names are served.
public struct BootInventory: Hashable, Sendable {
    /// Profiles by name.
    public let profiles: [String: BootProfile]
    /// Groups, most specific first.
    public let groups: [BootGroup]
    /// Known machines.
    public let machines: [Machine]

    /// Validates: unique profile, group and machine keys, every group's profile exists,
    /// exactly one default group (empty selector), no two groups with the same selector.
    public init(profiles: [BootProfile], groups: [BootGroup], machines: [Machine] = []) throws(BootInventoryError) {
        var profilesByName: [String: BootProfile] = [:]
        for profile in profiles {
            guard profilesByName.updateValue(profile, forKey: profile.name) == nil else {
                throw .duplicateProfile(profile.name)
            }
        }
        var groupNames: Set<String> = []
        var selectors: [MachineSelector: String] = [:]
        for group in groups {
            guard groupNames.insert(group.name).inserted else { throw .duplicateGroup(group.name) }
            guard profilesByName[group.profile] != nil else {
                throw .unknownProfile(group: group.name, profile: group.profile)
            }
            if let other = selectors.updateValue(group.name, forKey: group.selector) {
                throw group.selector.isEmpty
                    ? .multipleDefaultGroups([other, group.name]) : .sameSelector([other, group.name])
            }
        }
        guard selectors[MachineSelector()] != nil else { throw .noDefaultGroup }
        var addresses: Set<HardwareAddress> = []
        for machine in machines {
            guard addresses.insert(machine.hardwareAddress).inserted else {
                throw .duplicateMachine(machine.hardwareAddress)
            }
        }
        self.profiles = profilesByName
        self.groups = groups.sorted {
            $0.selector.specificity != $1.selector.specificity
                ? $1.selector.specificity.lexicographicallyPrecedes($0.selector.specificity)
                : $0.name < $1.name
        }
        self.machines = machines
    }

    /// The known machine with this MAC.
    public func machine(hardwareAddress: HardwareAddress) -> Machine? {
        self.machines.first { $0.hardwareAddress == hardwareAddress }
    }

    /// The known machine with this UUID.
    public func machine(uuid: ClientUUID) -> Machine? {
        self.machines.first { $0.uuid == uuid }
    }

    /// The machine that asks with this MAC and UUID: the one declared with that MAC (else that
    /// UUID), or else an undeclared machine that a group selects by that MAC or UUID. `nil`
    /// for machines nobody declared nor named: they boot their local disk, so a stranger on the
    /// network is never installed by the default group.
    public func machine(hardwareAddress: HardwareAddress?, uuid: ClientUUID?) -> Machine? {
        if let hardwareAddress, let machine = self.machine(hardwareAddress: hardwareAddress) { return machine }
        if let uuid, let machine = self.machine(uuid: uuid) { return machine }
        guard let hardwareAddress else { return nil }
        let named = self.groups.contains { group in
            (group.selector.hardwareAddress != nil && group.selector.hardwareAddress == hardwareAddress)
                || (group.selector.uuid != nil && group.selector.uuid == uuid)
        }
        return named ? Machine(hardwareAddress: hardwareAddress, uuid: uuid) : nil
    }

    /// The most specific group matching `machine` (the default group at worst).
    public func group(for machine: Machine) -> BootGroup {
        // The default group matches everything and validation guaranteed it exists.
        self.groups.first { $0.selector.matches(machine) }!
    }

    /// What `machine` boots: its group, the group's profile, and the variables (the
    /// machine's own over the group's).
    public func assignment(for machine: Machine) -> BootAssignment {
        let group = self.group(for: machine)
        return BootAssignment(
            machine: machine,
            group: group,
            profile: self.profiles[group.profile]!,
            variables: group.variables.merging(machine.variables) { $1 }
        )
    }

    /// What to serve for a `pxelinux.cfg` name: a known machine's own `01-<mac>` or
    /// `<uuid>` menu (local boot once installed), local boot for `default`, and nothing for
    /// other names (IP prefixes, unknown machines), so pxelinux falls through to `default`.
    public func pxelinuxConfig(for name: PXELinuxConfigName) -> PXELinuxConfigContent? {
        let machine: Machine?
        switch name {
        case .default:
            return .localBoot
        case .ipAddressPrefix:
            return nil
        case .uuid(let uuid):
            machine = self.machine(uuid: uuid)
        case .hardwareAddress(let type, let address):
            machine = type == 1 ? self.machine(hardwareAddress: address) : nil
        }
        guard let machine else { return nil }
        return machine.installState == .install ? .install(self.assignment(for: machine)) : .localBoot
    }
}

/// A machine's resolved boot choice.
public struct BootAssignment: Hashable, Sendable {
    /// The machine.
    public var machine: Machine
    /// The group that selected it.
    public var group: BootGroup
    /// The profile it boots.
    public var profile: BootProfile
    /// Template variables.
    public var variables: [String: TemplateValue]
}

/// What a served `pxelinux.cfg` file says.
public enum PXELinuxConfigContent: Hashable, Sendable {
    /// Boot the local disk.
    case localBoot
    /// Install with this assignment's profile.
    case install(BootAssignment)
}

/// Why an inventory is invalid.
public enum BootInventoryError: Error, Hashable, Sendable {
    /// Two profiles with this name.
    case duplicateProfile(String)
    /// Two groups with this name.
    case duplicateGroup(String)
    /// Two machines with this MAC.
    case duplicateMachine(HardwareAddress)
    /// A group names a profile that does not exist.
    case unknownProfile(group: String, profile: String)
    /// No group with an empty selector.
    case noDefaultGroup
    /// More than one group with an empty selector.
    case multipleDefaultGroups([String])
    /// Two groups with the same non-empty selector: which one wins would be arbitrary.
    case sameSelector([String])
}
