import Testing

@testable import PorticoNetboot

@Suite struct TFTPAdmissionTests {
    func read(_ name: String, mode: TFTPTransferMode = .octet) -> [UInt8] {
        TFTPPacket.readRequest(TFTPRequest(fileName: name, mode: mode)).encoded()
    }

    @Test func writesAreRefused() {
        var admission = TFTPAdmission(configuration: TFTPConfiguration())
        let write = TFTPPacket.writeRequest(TFTPRequest(fileName: "x")).encoded()
        #expect(admission.admit(write) == .reject(.error(.accessViolation, message: "Read-only server")))
        #expect(admission.activeTransfers == 0)
    }

    @Test func traversalIsRefusedWithoutEchoingThePath() {
        var admission = TFTPAdmission(configuration: TFTPConfiguration())
        for name in ["../etc/passwd", "pxelinux.cfg/../../etc/shadow", "..\\..\\boot.ini", "a\u{1}b"] {
            #expect(admission.admit(self.read(name)) == .reject(.error(.accessViolation, message: "Access violation")))
        }
        #expect(admission.admit(self.read("/")) == .reject(.error(.fileNotFound, message: "File not found")))
    }

    @Test func backslashesAndLeadingSlashesAreNormalised() throws {
        var admission = TFTPAdmission(configuration: TFTPConfiguration())
        guard case .serve(_, let path) = admission.admit(self.read("\\boot\\\\grub\\.\\grubx64.efi")) else {
            Issue.record("not served")
            return
        }
        #expect(path.components == ["boot", "grub", "grubx64.efi"])
        #expect(try TFTPPath(sanitizing: "///pxelinux.cfg/default").description == "pxelinux.cfg/default")
    }

    @Test func concurrentTransfersAreCapped() {
        var admission = TFTPAdmission(configuration: TFTPConfiguration(maximumConcurrentTransfers: 2))
        #expect(
            admission.admit(self.read("a")) != .reject(.error(.notDefined, message: "Server busy, try again later"))
        )
        _ = admission.admit(self.read("b"))
        #expect(
            admission.admit(self.read("c")) == .reject(.error(.notDefined, message: "Server busy, try again later"))
        )
        admission.release()
        guard case .serve = admission.admit(self.read("c")) else {
            Issue.record("not served after release")
            return
        }
    }

    @Test func nonRequestsAreIgnoredAndMalformedRequestsRefused() {
        var admission = TFTPAdmission(configuration: TFTPConfiguration())
        #expect(admission.admit(TFTPPacket.acknowledgement(block: 1).encoded()) == .ignore)
        #expect(admission.admit([0, 9, 1, 2]) == .ignore)
        #expect(admission.admit([]) == .ignore)
        #expect(admission.admit([0, 1, 0x61]) == .reject(.error(.illegalOperation, message: "Malformed request")))
        #expect(
            admission.admit(self.read("a", mode: .mail))
                == .reject(.error(.illegalOperation, message: "Mail mode not supported"))
        )
    }

    @Test func netasciiConvertsLineEnds() {
        #expect(TFTPNetascii.encode(Array("a\nb\rc".utf8)) == Array("a\r\nb\r\0c".utf8))
    }
}

struct MemoryFileSystem: FileSystemInspector {
    var items: [String: FileSystemItem]

    func item(at absolutePath: String) -> FileSystemItem {
        self.items[absolutePath] ?? .missing
    }
}

@Suite struct TFTPPathResolverTests {
    let fileSystem = MemoryFileSystem(items: [
        "/srv": .directory,
        "/srv/secret": .regularFile(size: 1),
        "/srv/tftp": .directory,
        "/srv/tftp/pxelinux.0": .regularFile(size: 42),
        "/srv/tftp/sub": .directory,
        "/srv/tftp/sub/file": .regularFile(size: 7),
        "/srv/tftp/sub/back": .symbolicLink(destination: "../pxelinux.0"),
        "/srv/tftp/inner": .symbolicLink(destination: "sub/file"),
        "/srv/tftp/escape": .symbolicLink(destination: "/etc/passwd"),
        "/srv/tftp/up": .symbolicLink(destination: "../secret"),
        "/srv/tftp/dirlink": .symbolicLink(destination: "/etc"),
        "/srv/tftp/loop": .symbolicLink(destination: "loop"),
        "/srv/tftp/device": .other,
        "/etc": .directory,
        "/etc/passwd": .regularFile(size: 900),
        "/tftpboot": .symbolicLink(destination: "/srv/tftp"),
    ])

    func resolve(_ name: String, root: String = "/srv/tftp") throws(TFTPPathError) -> ResolvedFile {
        try TFTPPathResolver.resolve(TFTPPath(sanitizing: name), root: root, inspector: self.fileSystem)
    }

    @Test func filesAndInsideLinksResolve() throws {
        #expect(try self.resolve("pxelinux.0") == ResolvedFile(path: "/srv/tftp/pxelinux.0", size: 42))
        #expect(try self.resolve("inner").path == "/srv/tftp/sub/file")
        #expect(try self.resolve("sub/back").path == "/srv/tftp/pxelinux.0")
        #expect(try self.resolve("pxelinux.0", root: "/tftpboot").path == "/srv/tftp/pxelinux.0")
    }

    @Test func symlinkEscapesAreRefused() {
        #expect(throws: TFTPPathError.outsideRoot) { try self.resolve("escape") }
        #expect(throws: TFTPPathError.outsideRoot) { try self.resolve("up") }
        #expect(throws: TFTPPathError.outsideRoot) { try self.resolve("dirlink/passwd") }
        #expect(TFTPPathError.outsideRoot.errorPacket == .error(.accessViolation, message: "Access violation"))
    }

    @Test func missingLoopsAndSpecialFilesAreRefused() {
        #expect(throws: TFTPPathError.notFound) { try self.resolve("nothing") }
        #expect(throws: TFTPPathError.notFound) { try self.resolve("pxelinux.0/x") }
        #expect(throws: TFTPPathError.tooManySymbolicLinks) { try self.resolve("loop") }
        #expect(throws: TFTPPathError.notARegularFile) { try self.resolve("sub") }
        #expect(throws: TFTPPathError.notARegularFile) { try self.resolve("device") }
    }

    @Test func errorMessagesNeverContainPaths() {
        let errors: [TFTPPathError] = [
            .empty, .parentDirectoryReference, .invalidCharacter, .notFound, .outsideRoot, .notARegularFile,
            .tooManySymbolicLinks,
        ]
        for error in errors {
            guard case .error(_, let message) = error.errorPacket else { continue }
            #expect(!message.contains("/"))
        }
    }
}
