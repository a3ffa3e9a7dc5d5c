import Testing

@testable import PorticoNetboot

@Suite struct PXELinuxConfigNameTests {
    let uuid = ClientUUID("B8945908-D6A6-41A9-611D-74A6AB80B83D")!
    let mac = HardwareAddress("88:99:AA:BB:CC:DD")!

    @Test func lookupOrderMatchesPxelinuxDocumentation() {
        let names = PXELinuxConfigName.lookupOrder(
            uuid: self.uuid,
            hardwareAddress: self.mac,
            ipAddress: IPv4Address(192, 0, 2, 91)
        )
        #expect(
            names.map(\.path) == [
                "pxelinux.cfg/b8945908-d6a6-41a9-611d-74a6ab80b83d", "pxelinux.cfg/01-88-99-aa-bb-cc-dd",
                "pxelinux.cfg/C000025B", "pxelinux.cfg/C000025", "pxelinux.cfg/C00002", "pxelinux.cfg/C0000",
                "pxelinux.cfg/C000", "pxelinux.cfg/C00", "pxelinux.cfg/C0", "pxelinux.cfg/C", "pxelinux.cfg/default",
            ]
        )
        #expect(PXELinuxConfigName.lookupOrder(uuid: nil, hardwareAddress: nil, ipAddress: nil) == [.default])
    }

    @Test func requestedPathsAreRecognised() throws {
        for name in PXELinuxConfigName.lookupOrder(
            uuid: self.uuid,
            hardwareAddress: self.mac,
            ipAddress: IPv4Address(10, 0, 0, 1)
        ) {
            #expect(PXELinuxConfigName(path: try TFTPPath(sanitizing: name.path)) == name)
        }
        for other in ["pxelinux.cfg/01-88-99-AA-BB-CC-DD", "pxelinux.cfg/c0", "pxelinux.0", "pxelinux.cfg/x/default"] {
            #expect(PXELinuxConfigName(path: try TFTPPath(sanitizing: other)) == nil)
        }
    }
}

@Suite struct BootInventoryTests {
    let installer = BootProfile(
        name: "fedora",
        kernel: "vmlinuz",
        initrds: ["initrd.img"],
        kernelArguments: ["inst.ks=http://{{server}}/kickstart/{{mac}}"],
        templates: ["kickstart": "user {{user}}"]
    )
    let local = BootProfile(name: "local", kernel: "")
    let web = HardwareAddress("52:54:00:00:00:01")!
    let database = HardwareAddress("52:54:00:00:00:02")!

    func inventory(machines: [Machine]? = nil) throws -> BootInventory {
        try BootInventory(
            profiles: [self.installer, self.local],
            groups: [
                BootGroup(name: "default", profile: "local"),
                BootGroup(name: "rack", profile: "fedora", selector: MachineSelector(labels: ["rack": "a"])),
                BootGroup(
                    name: "rack-web",
                    profile: "fedora",
                    selector: MachineSelector(labels: ["rack": "a", "role": "web"]),
                    variables: ["user": "ops", "disk": "sda"]
                ),
                BootGroup(name: "db", profile: "fedora", selector: MachineSelector(hostname: "db1")),
                BootGroup(name: "pinned", profile: "local", selector: MachineSelector(hardwareAddress: self.database)),
            ],
            machines: machines ?? [
                Machine(
                    hardwareAddress: self.web,
                    labels: ["rack": "a", "role": "web"],
                    variables: ["disk": "nvme0n1"]
                ),
                Machine(hardwareAddress: self.database, hostname: "db1", labels: ["rack": "a"]),
            ]
        )
    }

    @Test func mostSpecificGroupWins() throws {
        let inventory = try self.inventory()
        #expect(inventory.group(for: inventory.machine(hardwareAddress: self.web)!).name == "rack-web")
        #expect(inventory.group(for: inventory.machine(hardwareAddress: self.database)!).name == "pinned")
        #expect(
            inventory.group(for: Machine(hardwareAddress: self.web, hostname: "DB1", labels: ["rack": "a"])).name
                == "db"
        )
        #expect(inventory.group(for: Machine(hardwareAddress: self.web, labels: ["rack": "a"])).name == "rack")
        #expect(inventory.group(for: Machine(hardwareAddress: HardwareAddress("02:00:00:00:00:09")!)).name == "default")
    }

    @Test func machineVariablesOverrideGroupVariables() throws {
        let inventory = try self.inventory()
        let assignment = inventory.assignment(for: inventory.machine(hardwareAddress: self.web)!)
        #expect(assignment.profile == self.installer)
        #expect(assignment.variables == ["user": "ops", "disk": "nvme0n1"])
    }

    @Test func servedPxelinuxNames() throws {
        let uuid = ClientUUID("00000000-0000-0000-0000-000000000001")!
        let inventory = try self.inventory(machines: [
            Machine(hardwareAddress: self.web, uuid: uuid, labels: ["rack": "a"]),
            Machine(hardwareAddress: self.database, installState: .localBoot),
        ])
        #expect(inventory.pxelinuxConfig(for: .default) == .localBoot)
        #expect(inventory.pxelinuxConfig(for: .ipAddressPrefix("C0")) == nil)
        guard case .install(let assignment) = inventory.pxelinuxConfig(for: .hardwareAddress(type: 1, self.web)) else {
            Issue.record("web is not installing")
            return
        }
        #expect(assignment.group.name == "rack")
        #expect(inventory.pxelinuxConfig(for: .uuid(uuid)) == .install(assignment))
        #expect(inventory.pxelinuxConfig(for: .hardwareAddress(type: 1, self.database)) == .localBoot)
        #expect(inventory.pxelinuxConfig(for: .hardwareAddress(type: 1, HardwareAddress("02:00:00:00:00:09")!)) == nil)
        #expect(inventory.pxelinuxConfig(for: .hardwareAddress(type: 6, self.web)) == nil)
    }

    @Test func validationErrors() {
        let local = self.local
        #expect(throws: BootInventoryError.noDefaultGroup) {
            try BootInventory(profiles: [local], groups: [])
        }
        #expect(throws: BootInventoryError.multipleDefaultGroups(["a", "b"])) {
            try BootInventory(
                profiles: [local],
                groups: [BootGroup(name: "a", profile: "local"), BootGroup(name: "b", profile: "local")]
            )
        }
        #expect(throws: BootInventoryError.unknownProfile(group: "a", profile: "nope")) {
            try BootInventory(profiles: [local], groups: [BootGroup(name: "a", profile: "nope")])
        }
        #expect(throws: BootInventoryError.duplicateProfile("local")) {
            try BootInventory(profiles: [local, local], groups: [BootGroup(name: "a", profile: "local")])
        }
        #expect(throws: BootInventoryError.duplicateGroup("a")) {
            try BootInventory(
                profiles: [local],
                groups: [
                    BootGroup(name: "a", profile: "local"),
                    BootGroup(name: "a", profile: "local", selector: MachineSelector(hostname: "x")),
                ]
            )
        }
        #expect(throws: BootInventoryError.sameSelector(["x", "y"])) {
            try BootInventory(
                profiles: [local],
                groups: [
                    BootGroup(name: "d", profile: "local"),
                    BootGroup(name: "x", profile: "local", selector: MachineSelector(hostname: "h")),
                    BootGroup(name: "y", profile: "local", selector: MachineSelector(hostname: "h")),
                ]
            )
        }
        let mac = self.web
        #expect(throws: BootInventoryError.duplicateMachine(mac)) {
            try BootInventory(
                profiles: [local],
                groups: [BootGroup(name: "d", profile: "local")],
                machines: [Machine(hardwareAddress: mac), Machine(hardwareAddress: mac)]
            )
        }
    }
}
