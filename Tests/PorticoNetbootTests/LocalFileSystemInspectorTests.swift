import Testing

@testable import PorticoNetboot

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct LocalFileSystemInspectorTests {
    /// A real temporary tree: root/boot.bin (5 bytes), root/inside -> boot.bin,
    /// root/escape -> ../outside.txt, outside.txt beside root.
    @Test func realSymlinkEscapeIsRefused() throws {
        var template = Array("/tmp/portico-tftp-XXXXXX".utf8CString)
        let base = try #require(
            template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) }
        )
        defer {
            for file in ["root/boot.bin", "root/inside", "root/escape", "outside.txt"] { unlink("\(base)/\(file)") }
            rmdir("\(base)/root")
            rmdir(base)
        }
        #expect(mkdir("\(base)/root", 0o755) == 0)
        for (path, contents) in [("\(base)/root/boot.bin", "hello"), ("\(base)/outside.txt", "secret")] {
            let file = try #require(fopen(path, "w"))
            fputs(contents, file)
            fclose(file)
        }
        #expect(symlink("boot.bin", "\(base)/root/inside") == 0)
        #expect(symlink("../outside.txt", "\(base)/root/escape") == 0)

        let inspector = LocalFileSystemInspector()
        let root = "\(base)/root"
        let found = try TFTPPathResolver.resolve(TFTPPath(sanitizing: "inside"), root: root, inspector: inspector)
        #expect(found.size == 5)
        #expect(found.path.hasSuffix("/root/boot.bin"))
        #expect(throws: TFTPPathError.outsideRoot) {
            try TFTPPathResolver.resolve(TFTPPath(sanitizing: "escape"), root: root, inspector: inspector)
        }
        #expect(throws: TFTPPathError.notFound) {
            try TFTPPathResolver.resolve(TFTPPath(sanitizing: "missing"), root: root, inspector: inspector)
        }
    }
}
