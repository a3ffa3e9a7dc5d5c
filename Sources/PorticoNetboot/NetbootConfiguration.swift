/// Everything the network boot servers need, computed by the plan from the manifests: where
/// to listen, what address to advertise, where boot loaders and assets are, and the
/// inventory of profiles, groups and machines.
public struct NetbootConfiguration: Hashable, Sendable {
    /// Debian's boot loader directories: `pxelinux`, `syslinux-common` (BIOS modules such as
    /// `ldlinux.c32`, `vesamenu.c32`) and `ipxe` (`undionly.kpxe`, `ipxe.efi`, `snp.efi`).
    public static let debianBootLoaderDirectories = [
        "/usr/lib/PXELINUX", "/usr/lib/syslinux/modules/bios", "/usr/lib/ipxe",
    ]

    /// A UDP or TCP listening address.
    public struct Listen: Hashable, Sendable {
        /// The address to bind (`0.0.0.0` for every interface).
        public var host: String
        /// The port (0: any free port, for tests).
        public var port: Int

        /// A listening address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// The address machines reach this server at: `siaddr`, option 54 and the HTTP URLs.
    public var serverAddress: IPv4Address
    /// proxyDHCP's port 67 socket (DISCOVERs).
    public var dhcp: Listen
    /// proxyDHCP's port 4011 socket (PXE boot server requests).
    public var bootServer: Listen
    /// The interface proxyDHCP's sockets are bound to (`SO_BINDTODEVICE`), if any.
    public var interface: String?
    /// The port DHCP replies to broadcast and unrelayed clients go to (68).
    public var dhcpClientPort: UInt16
    /// The TFTP request socket.
    public var tftp: Listen
    /// The HTTP boot listener.
    public var http: Listen
    /// The port machines use for HTTP boot URLs (the HTTP listener's, unless it is 0).
    public var advertisedHTTPPort: Int
    /// The directory served under `/assets/` over HTTP and as the TFTP root (kernels,
    /// initrds, installer trees); `nil` for none.
    public var assetsDirectory: String?
    /// Directories whose files are served by name at the TFTP and HTTP root, first one wins.
    public var bootLoaderDirectories: [String]
    /// The largest TFTP block size and window granted.
    public var tftpLimits: TFTPConfiguration
    /// For test rigs whose NIC ROMs are iPXE builds (see ``ProxyDHCPResponder``).
    public var treatsFirmwareIPXEAsPlainPXE: Bool
    /// Profiles, groups and machines.
    public var inventory: BootInventory

    /// A configuration.
    public init(
        serverAddress: IPv4Address,
        dhcp: Listen = Listen(host: "0.0.0.0", port: 67),
        bootServer: Listen = Listen(host: "0.0.0.0", port: 4011),
        dhcpClientPort: UInt16 = 68,
        interface: String? = nil,
        tftp: Listen = Listen(host: "0.0.0.0", port: 69),
        http: Listen = Listen(host: "0.0.0.0", port: 8080),
        advertisedHTTPPort: Int? = nil,
        assetsDirectory: String? = nil,
        bootLoaderDirectories: [String] = Self.debianBootLoaderDirectories,
        tftpLimits: TFTPConfiguration = TFTPConfiguration(),
        treatsFirmwareIPXEAsPlainPXE: Bool = false,
        inventory: BootInventory
    ) {
        self.serverAddress = serverAddress
        self.dhcp = dhcp
        self.bootServer = bootServer
        self.dhcpClientPort = dhcpClientPort
        self.interface = interface
        self.tftp = tftp
        self.http = http
        self.advertisedHTTPPort = advertisedHTTPPort ?? http.port
        self.assetsDirectory = assetsDirectory
        self.bootLoaderDirectories = bootLoaderDirectories
        self.tftpLimits = tftpLimits
        self.treatsFirmwareIPXEAsPlainPXE = treatsFirmwareIPXEAsPlainPXE
        self.inventory = inventory
    }

    /// `http://<server>:<port>` (no port for 80).
    public var httpBase: String {
        self.advertisedHTTPPort == 80
            ? "http://\(self.serverAddress)" : "http://\(self.serverAddress):\(self.advertisedHTTPPort)"
    }

    /// The same configuration without the inventory: when only the inventory changes, the
    /// servers keep their sockets and only the content is swapped.
    public var listeningPart: NetbootConfiguration {
        var copy = self
        copy.inventory = Self.emptyInventory
        return copy
    }

    private static let emptyInventory: BootInventory = {
        // One profile and one default group: always valid.
        try! BootInventory(
            profiles: [BootProfile(name: "-", kernel: "-")],
            groups: [BootGroup(name: "-", profile: "-")]
        )
    }()
}
