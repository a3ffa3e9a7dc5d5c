/// The first-stage boot loader names the proxyDHCP responder hands out per client
/// architecture (names relative to the TFTP root, and to the HTTP base for UEFI HTTP boot).
public struct BootLoaderFiles: Hashable, Sendable {
    /// For x86 BIOS PXE ROMs (arch 0): iPXE's UNDI loader.
    public var x86BIOS: String
    /// For IA32 UEFI (arch 6 and HTTP 0x0F).
    public var x86UEFI: String
    /// For x86-64 UEFI (arch 7 and 9, and HTTP 0x10).
    public var x64UEFI: String
    /// For ARM 32-bit UEFI (arch 10 and HTTP 0x12).
    public var arm32UEFI: String
    /// For ARM 64-bit UEFI (arch 11 and HTTP 0x13).
    public var arm64UEFI: String
    /// The iPXE script iPXE clients fetch over HTTP, relative to the HTTP base.
    public var ipxeScript: String

    /// iPXE's loaders as Debian's `ipxe` package names them.
    public static let ipxeDefaults = BootLoaderFiles(
        x86BIOS: "undionly.kpxe",
        x86UEFI: "ipxe.efi",
        x64UEFI: "ipxe.efi",
        arm32UEFI: "snp.efi",
        arm64UEFI: "snp.efi",
        ipxeScript: "boot.ipxe"
    )

    /// Loader names per architecture.
    public init(
        x86BIOS: String,
        x86UEFI: String,
        x64UEFI: String,
        arm32UEFI: String,
        arm64UEFI: String,
        ipxeScript: String
    ) {
        self.x86BIOS = x86BIOS
        self.x86UEFI = x86UEFI
        self.x64UEFI = x64UEFI
        self.arm32UEFI = arm32UEFI
        self.arm64UEFI = arm64UEFI
        self.ipxeScript = ipxeScript
    }

    /// The loader for `architecture`, `nil` for architectures there is no loader for.
    public func loader(for architecture: ClientArchitecture) -> String? {
        switch architecture.rawValue {
        case 0: self.x86BIOS
        case 6, 0x0F: self.x86UEFI
        case 7, 9, 0x10: self.x64UEFI
        case 10, 0x12: self.arm32UEFI
        case 11, 0x13: self.arm64UEFI
        default: nil
        }
    }
}
