/// A client system architecture from option 93 (RFC 4578, IANA "Processor Architecture Types").
public struct ClientArchitecture: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 16-bit type.
    public var rawValue: UInt16

    /// The architecture with type `rawValue`.
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 0: x86 BIOS.
    public static let x86BIOS = ClientArchitecture(rawValue: 0)
    /// 6: IA32 (32-bit x86) UEFI.
    public static let x86UEFI = ClientArchitecture(rawValue: 6)
    /// 7: x86-64 UEFI.
    public static let x64UEFI = ClientArchitecture(rawValue: 7)
    /// 9: EFI byte code, sent by x86-64 UEFI firmwares.
    public static let efiByteCode = ClientArchitecture(rawValue: 9)
    /// 10: ARM 32-bit UEFI.
    public static let arm32UEFI = ClientArchitecture(rawValue: 10)
    /// 11: ARM 64-bit UEFI.
    public static let arm64UEFI = ClientArchitecture(rawValue: 11)
    /// 0x0F: IA32 UEFI boot from HTTP.
    public static let x86UEFIHTTP = ClientArchitecture(rawValue: 0x0F)
    /// 0x10: x86-64 UEFI boot from HTTP.
    public static let x64UEFIHTTP = ClientArchitecture(rawValue: 0x10)
    /// 0x12: ARM 32-bit UEFI boot from HTTP.
    public static let arm32UEFIHTTP = ClientArchitecture(rawValue: 0x12)
    /// 0x13: ARM 64-bit UEFI boot from HTTP.
    public static let arm64UEFIHTTP = ClientArchitecture(rawValue: 0x13)

    /// Whether this is a UEFI HTTP boot type (0x0F, 0x10, 0x12, 0x13).
    public var isHTTPBoot: Bool {
        [0x0F, 0x10, 0x12, 0x13].contains(self.rawValue)
    }

    /// The type in decimal, as in `PXEClient:Arch:00007`.
    public var description: String { "arch \(self.rawValue)" }
}
