import Foundation
import Testing

@testable import PorticoNetboot

/// Real TFTP clients (atftp, tftp-hpa, curl) against the server on loopback. Each test is
/// skipped, with the reason printed, when its client is not installed.
@Suite(.serialized) struct TFTPServerClientTests {
    /// atftp option sets: none (RFC 1350 lockstep, 512-byte blocks), each option alone, and all.
    static let atftpOptionSets: [[String]] = [
        [],
        ["blksize 1428"],
        ["tsize 0"],
        ["windowsize 8"],
        ["blksize 1428", "windowsize 8", "tsize 0", "timeout 2"],
    ]

    @Test(.enabled(if: ExternalClient.atftp != nil, "atftp is not installed"), arguments: Self.atftpOptionSets)
    func atftpFetchesSmallExactAndLargeFiles(options: [String]) async throws {
        let atftp = try #require(ExternalClient.atftp)
        try await TFTPServerFixture.with { fixture in
            let tree = fixture.tree
            for (name, expected) in [("small.txt", tree.small), ("exact.bin", tree.exact), ("big.bin", tree.big)] {
                let local = tree.download("atftp-\(name)")
                let arguments =
                    options.flatMap { ["--option", $0] } + [
                        "-g", "-r", name, "-l", local, "127.0.0.1", "\(fixture.port)",
                    ]
                let result = try await ExternalClient.run(atftp, arguments)
                #expect(result.status == 0, "atftp \(arguments): \(result.output)")
                #expect(try Self.contents(local) == expected, "\(name) with \(options)")
            }
            try await fixture.waitUntilIdle()
            #expect(fixture.metrics.value("portico_tftp_transfers_total", [("outcome", "completed")]) == 3)
            #expect(fixture.metrics.value("portico_tftp_active_transfers") == 0)
        }
    }

    /// Block numbers wrap past 65535: 528 000 bytes in 8-byte blocks is 66 001 blocks, in
    /// windows of 16 so the test stays fast.
    @Test(.enabled(if: ExternalClient.atftp != nil, "atftp is not installed"))
    func atftpFetchesAcrossBlockNumberWraparound() async throws {
        let atftp = try #require(ExternalClient.atftp)
        try await TFTPServerFixture.with { fixture in
            let name = "wrap.bin"
            let expected = Array(fixture.tree.big.prefix(528_000))
            try Data(expected).write(to: URL(fileURLWithPath: fixture.tree.root + "/" + name))
            let local = fixture.tree.download(name)
            let result = try await ExternalClient.run(
                atftp,
                [
                    "--option", "blksize 8", "--option", "windowsize 16", "-g", "-r", name, "-l", local, "127.0.0.1",
                    "\(fixture.port)",
                ]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(try Self.contents(local) == expected)
        }
    }

    @Test(.enabled(if: ExternalClient.tftpHPA != nil, "tftp-hpa is not installed"))
    func tftpHPAFetchesSmallExactAndLargeFiles() async throws {
        let tftp = try #require(ExternalClient.tftpHPA)
        try await TFTPServerFixture.with { fixture in
            let tree = fixture.tree
            // tftp-hpa 5.2's client has no blksize option: plain RFC 1350.
            for (name, expected) in [("small.txt", tree.small), ("exact.bin", tree.exact), ("big.bin", tree.big)] {
                let local = tree.download("hpa-\(name)")
                let result = try await ExternalClient.run(
                    tftp,
                    ["-m", "binary", "127.0.0.1", "\(fixture.port)", "-c", "get", name, local]
                )
                #expect(result.status == 0, "\(result.output)")
                #expect(try Self.contents(local) == expected, "\(name)")
            }
        }
    }

    @Test(
        .enabled(if: ExternalClient.curl != nil, "curl is not installed"),
        arguments: [[], ["--tftp-blksize", "1428"]]
    )
    func curlFetchesSmallExactAndLargeFiles(options: [String]) async throws {
        let curl = try #require(ExternalClient.curl)
        try await TFTPServerFixture.with { fixture in
            let tree = fixture.tree
            // curl asks for tsize and blksize itself: the OACK path.
            for (name, expected) in [("small.txt", tree.small), ("exact.bin", tree.exact), ("big.bin", tree.big)] {
                let local = tree.download("curl-\(name)")
                let result = try await ExternalClient.run(
                    curl,
                    ["-sS", "-o", local] + options + ["tftp://127.0.0.1:\(fixture.port)/\(name)"]
                )
                #expect(result.status == 0, "\(result.output)")
                #expect(try Self.contents(local) == expected, "\(name) with \(options)")
            }
        }
    }

    @Test(
        .enabled(if: ExternalClient.atftp != nil, "atftp is not installed"),
        arguments: [
            "../etc/passwd", "..\\..\\etc\\passwd", "sub/../../outside.txt", "escape", "escape-relative",
        ]
    )
    func atftpIsRefusedTraversalAndEscapingLinks(name: String) async throws {
        let atftp = try #require(ExternalClient.atftp)
        try await TFTPServerFixture.with { fixture in
            let local = fixture.tree.download("refused")
            let result = try await ExternalClient.run(
                atftp,
                ["-g", "-r", name, "-l", local, "127.0.0.1", "\(fixture.port)"]
            )
            #expect(result.status != 0)
            #expect(result.output.contains("Access violation"), "\(result.output)")
            #expect(!result.output.contains("/tmp"), "an error leaks a server path: \(result.output)")
            #expect((try? Self.contents(local))?.isEmpty ?? true)
        }
    }

    @Test(.enabled(if: ExternalClient.curl != nil, "curl is not installed"))
    func curlIsRefusedTraversal() async throws {
        let curl = try #require(ExternalClient.curl)
        try await TFTPServerFixture.with { fixture in
            let local = fixture.tree.download("curl-refused")
            let result = try await ExternalClient.run(
                curl,
                ["-sS", "--path-as-is", "-o", local, "tftp://127.0.0.1:\(fixture.port)/../outside.txt"]
            )
            #expect(result.status != 0, "\(result.output)")
            #expect((try? Self.contents(local)) != Array("secret\n".utf8))
        }
    }

    @Test(.enabled(if: ExternalClient.atftp != nil, "atftp is not installed"))
    func atftpUploadIsRefused() async throws {
        let atftp = try #require(ExternalClient.atftp)
        try await TFTPServerFixture.with { fixture in
            let result = try await ExternalClient.run(
                atftp,
                ["-p", "-r", "uploaded.bin", "-l", fixture.tree.root + "/small.txt", "127.0.0.1", "\(fixture.port)"]
            )
            #expect(result.status != 0)
            #expect(result.output.contains("Read-only server"), "\(result.output)")
            #expect(!FileManager.default.fileExists(atPath: fixture.tree.root + "/uploaded.bin"))
        }
    }

    static func contents(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
