/// `portico.dev/v1alpha1` resources for network boot: profiles (what to boot and the answer
/// templates), machine groups (which machines boot a profile), machines, and the settings of
/// the boot servers. Decoded with positions; turned into a boot inventory by the plan.
public enum NetbootKinds {
    /// The API version of Portico's own resources.
    public static let apiVersion = "portico.dev/v1alpha1"
    /// The kinds.
    public static let kinds: Set<String> = ["BootProfile", "MachineGroup", "Machine", "NetbootSettings"]
}

/// A template written in a manifest, with where its text starts so that a position inside the
/// template can be named in the file.
public struct TemplateSource: Hashable, Sendable {
    /// The template text.
    public var text: String
    /// The field path (`spec.templates.kickstart`).
    public var path: String
    /// Where the value is written.
    public var location: SourceLocation
    /// For a block scalar (`|`), the file line of the template's first line and the
    /// indentation of its lines; `nil` for a scalar on one line.
    public var blockStart: (line: Int, indentation: Int)?

    /// A template source.
    public init(text: String, path: String, location: SourceLocation, blockStart: (line: Int, indentation: Int)? = nil)
    {
        self.text = text
        self.path = path
        self.location = location
        self.blockStart = blockStart
    }

    /// The file position of a (1-based) line and column of the template text.
    public func location(line: Int, column: Int) -> SourceLocation {
        if let blockStart {
            return SourceLocation(
                file: location.file,
                line: blockStart.line + line - 1,
                column: blockStart.indentation + column
            )
        }
        return SourceLocation(
            file: location.file,
            line: location.line + line - 1,
            column: line == 1 ? location.column + column : column
        )
    }

    public static func == (lhs: TemplateSource, rhs: TemplateSource) -> Bool {
        lhs.text == rhs.text && lhs.path == rhs.path && lhs.location == rhs.location
            && lhs.blockStart?.line == rhs.blockStart?.line
            && lhs.blockStart?.indentation == rhs.blockStart?.indentation
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(text)
        hasher.combine(path)
        hasher.combine(location)
    }
}

/// A template variable as written: text (numbers are read as text), a boolean, a list or a
/// mapping.
public indirect enum VariableValue: Hashable, Sendable {
    case string(String)
    case bool(Bool)
    case list([VariableValue])
    case map([String: VariableValue])
}

/// `BootProfile`: what a machine boots to install, and the templates it is answered with.
public struct BootProfileResource: Hashable, Sendable {
    public var metadata: ObjectMeta
    /// Kernel path under the assets directory, or a URL (a template).
    public var kernel: TemplateSource?
    /// Initrd paths or URLs, in order (templates).
    public var initrds: [TemplateSource] = []
    /// Kernel arguments (templates).
    public var arguments: [TemplateSource] = []
    /// Templates by name: `pxelinux`, `ipxe`, `kickstart`, `preseed`, `user-data`,
    /// `meta-data`, or any name (served at `/netboot/<mac>/<name>`).
    public var templates: [String: TemplateSource] = [:]

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
    }
}

/// Which machines a group selects: each given field must match. Empty means the default group.
public struct MachineSelectorSpec: Hashable, Sendable {
    /// A MAC (`52:54:00:12:34:56`).
    public var mac: String?
    /// An SMBIOS UUID.
    public var uuid: String?
    /// A host name.
    public var hostname: String?
    /// Labels the Machine must carry (its `metadata.labels`).
    public var labels: [String: String] = [:]

    public init() {}

    public var isEmpty: Bool { mac == nil && uuid == nil && hostname == nil && labels.isEmpty }
}

/// `MachineGroup`: machines selected together, the profile they boot and their variables.
public struct MachineGroupResource: Hashable, Sendable {
    public var metadata: ObjectMeta
    /// The profile's name (in the group's namespace).
    public var profile: String = ""
    public var profileLocation: SourceLocation
    public var selector = MachineSelectorSpec()
    public var selectorLocation: SourceLocation
    public var variables: [String: VariableValue] = [:]

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
        self.profileLocation = metadata.location
        self.selectorLocation = metadata.location
    }
}

/// `Machine`: one machine, by MAC, with its UUID, host name, variables and install state.
public struct MachineResource: Hashable, Sendable {
    public enum Boot: String, Hashable, Sendable {
        /// Boot the installer until the machine reports its install complete.
        case install
        /// Boot the local disk.
        case local
    }

    public var metadata: ObjectMeta
    public var mac: String = ""
    public var macLocation: SourceLocation
    public var uuid: String?
    public var hostname: String?
    public var variables: [String: VariableValue] = [:]
    public var boot: Boot = .install
    /// Changing it asks for a new install after a completed one.
    public var reinstall: String = ""

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
        self.macLocation = metadata.location
    }
}

/// `NetbootSettings`: where the boot servers listen and what they advertise. Network boot
/// runs when exactly one exists.
public struct NetbootSettingsResource: Hashable, Sendable {
    public struct Listen: Hashable, Sendable {
        public var address: String
        public var port: Int

        public init(address: String, port: Int) {
            self.address = address
            self.port = port
        }
    }

    public var metadata: ObjectMeta
    /// The IPv4 address machines reach Portico at (siaddr, option 54, HTTP URLs).
    public var serverAddress: String = ""
    public var serverAddressLocation: SourceLocation
    public var dhcp = Listen(address: "0.0.0.0", port: 67)
    public var bootServerPort = 4011
    public var dhcpClientPort = 68
    /// The network interface proxyDHCP binds to.
    public var interface: String?
    public var tftp = Listen(address: "0.0.0.0", port: 69)
    public var http = Listen(address: "0.0.0.0", port: 8080)
    /// The port written in HTTP boot URLs, when it differs from the listener's.
    public var advertisedHTTPPort: Int?
    public var assetsDirectory: String?
    public var bootLoaderDirectories: [String]?
    public var maximumBlockSize: Int?
    public var maximumWindowSize: Int?
    public var firmwareIPXEAsPlainPXE = false

    public init(metadata: ObjectMeta) {
        self.metadata = metadata
        self.serverAddressLocation = metadata.location
    }
}
