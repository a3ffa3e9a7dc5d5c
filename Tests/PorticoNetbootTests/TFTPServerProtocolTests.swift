import Logging
import NIOCore
import NIOPosix
import Testing

@testable import PorticoNetboot

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The TFTP server on loopback, driven packet by packet from a crafted client socket.
@Suite(.serialized) struct TFTPServerProtocolTests {
    static func readRequest(
        _ name: String,
        mode: TFTPTransferMode = .octet,
        _ options: [(String, String)] = []
    )
        -> TFTPPacket
    {
        .readRequest(
            TFTPRequest(fileName: name, mode: mode, options: options.map { TFTPOption(name: $0.0, value: $0.1) })
        )
    }

    @Test(arguments: [
        ("../etc/passwd", TFTPErrorCode.accessViolation),
        ("..\\..\\etc\\passwd", .accessViolation),
        ("/sub/../../outside.txt", .accessViolation),
        ("escape", .accessViolation),
        ("escape-relative", .accessViolation),
        ("missing.bin", .fileNotFound),
        ("sub", .fileNotFound),
        ("/", .fileNotFound),
    ])
    func unsafeOrMissingNamesGetAnErrorFromAFreshPort(name: String, code: TFTPErrorCode) async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest(name), to: fixture.port)
            let (packet, port) = try #require(try client.receivePacket())
            guard case .error(let received, let message) = packet else {
                Issue.record("expected an ERROR, got \(packet)")
                return
            }
            #expect(received == code)
            #expect(!message.contains("/"), "the message leaks a path: \(message)")
            #expect(port != fixture.port)
            #expect(client.receive(timeout: .milliseconds(100)) == nil)
            #expect(fixture.metrics.value("portico_tftp_requests_total", [("result", "refused")]) == 1)
            #expect(await fixture.server.activeTransferCount() == 0)
        }
    }

    @Test func writeRequestIsRefusedWithAccessViolation() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            client.send(.writeRequest(TFTPRequest(fileName: "new.bin")), to: fixture.port)
            let (packet, _) = try #require(try client.receivePacket())
            #expect(packet == .error(.accessViolation, message: "Read-only server"))
        }
    }

    @Test func nonRequestsAndGarbageOnTheRequestPortAreDropped() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            for datagram: [UInt8] in [[0, 4, 0, 1], [0, 3, 0, 1, 42], [0, 5, 0, 0, 0], [0xFF], [], [0, 9, 1, 2]] {
                client.send(datagram, to: fixture.port)
            }
            #expect(client.receive(timeout: .milliseconds(200)) == nil)
            #expect(fixture.metrics.value("portico_tftp_datagrams_dropped_total") == 6)
            // Still serving.
            client.send(Self.readRequest("small.txt"), to: fixture.port)
            let (packet, _) = try #require(try client.receivePacket())
            #expect(packet == .data(block: 1, payload: fixture.tree.small))
        }
    }

    /// A packet from another port gets ERROR 5 at that port; the transfer goes on and completes.
    @Test func packetFromWrongPortGetsUnknownTransferIDWithoutDisturbingTheTransfer() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            let intruder = try TestUDPSocket()
            let expected = Array(fixture.tree.big.prefix(1300))
            try expected.write(to: fixture.tree.root + "/three-blocks.bin")
            client.send(Self.readRequest("three-blocks.bin"), to: fixture.port)
            let (first, transferPort) = try #require(try client.receivePacket())
            #expect(first == .data(block: 1, payload: Array(expected[0..<512])))

            intruder.send(TFTPPacket.acknowledgement(block: 1), to: transferPort)
            let (answer, answerPort) = try #require(try intruder.receivePacket())
            #expect(answer == .error(.unknownTransferID, message: "Unknown transfer ID"))
            #expect(answerPort == transferPort)
            // An ERROR from the wrong port is not answered (no ping-pong), nor does it end the transfer.
            intruder.send(TFTPPacket.error(.notDefined, message: "go away"), to: transferPort)
            #expect(intruder.receive(timeout: .milliseconds(100)) == nil)

            var received = first.payload
            var block: UInt16 = 1
            while true {
                client.send(TFTPPacket.acknowledgement(block: block), to: transferPort)
                let (packet, port) = try #require(try client.receivePacket())
                #expect(port == transferPort)
                guard case .data(let number, let payload) = packet else {
                    Issue.record("expected DATA, got \(packet)")
                    return
                }
                #expect(number == block + 1)
                block = number
                received += payload
                if payload.count < 512 { break }
            }
            client.send(TFTPPacket.acknowledgement(block: block), to: transferPort)
            #expect(received == expected)
            try await fixture.waitUntilIdle()
            #expect(fixture.metrics.value("portico_tftp_unknown_transfer_id_packets_total") == 2)
            #expect(fixture.metrics.value("portico_tftp_transfers_total", [("outcome", "completed")]) == 1)
        }
    }

    /// EDK2: RRQ with tsize only, read the OACK, abort with ERROR 8; then the real RRQ.
    @Test func edk2TsizeProbeThenAbortThenFullTransfer() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest("exact.bin", [("tsize", "0")]), to: fixture.port)
            let (oack, probePort) = try #require(try client.receivePacket())
            #expect(oack == .optionAcknowledgement([TFTPOption(name: "tsize", value: "1024")]))
            client.send(TFTPPacket.error(.optionNegotiationFailed, message: "Probe only"), to: probePort)
            try await fixture.waitUntilIdle()
            #expect(
                fixture.metrics.value("portico_tftp_transfers_total", [("outcome", "aborted_by_client")]) == 1
            )

            client.send(Self.readRequest("exact.bin", [("blksize", "1468"), ("windowsize", "4")]), to: fixture.port)
            let (oack2, port) = try #require(try client.receivePacket())
            #expect(
                oack2
                    == .optionAcknowledgement([
                        TFTPOption(name: "blksize", value: "1468"), TFTPOption(name: "windowsize", value: "4"),
                    ])
            )
            #expect(port != probePort)
            client.send(TFTPPacket.acknowledgement(block: 0), to: port)
            // 1024 bytes in 1468-byte blocks: one short block ends it.
            let (data, _) = try #require(try client.receivePacket())
            #expect(data == .data(block: 1, payload: fixture.tree.exact))
            client.send(TFTPPacket.acknowledgement(block: 1), to: port)
            try await fixture.waitUntilIdle()
        }
    }

    /// A file whose size is a multiple of the block size ends with an empty block.
    @Test func multipleOfBlockSizeEndsWithEmptyBlock() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest("exact.bin", [("windowsize", "8")]), to: fixture.port)
            let (oack, port) = try #require(try client.receivePacket())
            #expect(oack == .optionAcknowledgement([TFTPOption(name: "windowsize", value: "8")]))
            client.send(TFTPPacket.acknowledgement(block: 0), to: port)
            var blocks: [TFTPPacket] = []
            for _ in 0..<3 {
                blocks.append(try #require(try client.receivePacket()).packet)
            }
            #expect(
                blocks == [
                    .data(block: 1, payload: Array(fixture.tree.exact[0..<512])),
                    .data(block: 2, payload: Array(fixture.tree.exact[512...])), .data(block: 3, payload: []),
                ]
            )
            client.send(TFTPPacket.acknowledgement(block: 3), to: port)
            try await fixture.waitUntilIdle()
        }
    }

    /// No ACK: the window is sent again at each timeout, a bounded number of times, then the
    /// transfer is abandoned and its slot freed.
    @Test func silentClientGetsBoundedRetransmissionsThenTransferEnds() async throws {
        let limits = TFTPConfiguration(defaultTimeout: .milliseconds(100), maximumRetransmissions: 2)
        try await TFTPServerFixture.with(limits: limits) { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest("big.bin"), to: fixture.port)
            let first = try #require(try client.receivePacket())
            let again = try #require(try client.receivePacket(timeout: .seconds(1)))
            let third = try #require(try client.receivePacket(timeout: .seconds(1)))
            #expect(again.packet == first.packet)
            #expect(third.packet == first.packet)
            #expect(client.receive(timeout: .milliseconds(400)) == nil)
            try await fixture.waitUntilIdle()
            #expect(fixture.metrics.value("portico_tftp_transfers_total", [("outcome", "timed_out")]) == 1)
            #expect(fixture.metrics.value("portico_tftp_retransmissions_total") == 2)
        }
    }

    /// A window sent again after a timeout, a window restarted after an ACK inside it, and
    /// windows across the end of a read-ahead chunk all carry the file's bytes for their
    /// block numbers.
    @Test func retransmittedAndRestartedWindowsCarryTheFileBytes() async throws {
        let limits = TFTPConfiguration(defaultTimeout: .milliseconds(200))
        try await TFTPServerFixture.with(limits: limits) { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest("big.bin", [("blksize", "1024"), ("windowsize", "8")]), to: fixture.port)
            let (_, port) = try #require(try client.receivePacket())
            client.send(TFTPPacket.acknowledgement(block: 0), to: port)
            func window() throws -> [TFTPPacket] {
                try (0..<8).map { _ in try #require(try client.receivePacket(timeout: .seconds(2))).packet }
            }
            func expected(from first: Int) -> [TFTPPacket] {
                (first..<(first + 8)).map { block in
                    .data(block: UInt16(block), payload: Array(fixture.tree.big[(block - 1) * 1024..<block * 1024]))
                }
            }
            let first = try window()
            #expect(first == expected(from: 1))
            // No ACK: the same window after the timeout.
            #expect(try window() == first)
            client.send(TFTPPacket.acknowledgement(block: 5), to: port)
            let chunk = TFTPDataPackets(blockSize: 1024, windowSize: 8, fileSize: fixture.tree.big.count).chunkBlocks
            var next = 6
            while next <= chunk {
                #expect(try window() == expected(from: next))
                client.send(TFTPPacket.acknowledgement(block: UInt16(next + 7)), to: port)
                next += 8
            }
            #expect(next - 1 > chunk, "the last window checked runs past the first chunk")
            client.send(TFTPPacket.error(.notDefined, message: "done"), to: port)
            try await fixture.waitUntilIdle()
            #expect(fixture.metrics.value("portico_tftp_retransmissions_total") == 8)
        }
    }

    /// A duplicate ACK does not resend anything (no Sorcerer's Apprentice).
    @Test func duplicateAcknowledgementIsIgnored() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest("big.bin"), to: fixture.port)
            let (_, port) = try #require(try client.receivePacket())
            client.send(TFTPPacket.acknowledgement(block: 1), to: port)
            let (second, _) = try #require(try client.receivePacket())
            #expect(second.dataBlock == 2)
            client.send(TFTPPacket.acknowledgement(block: 1), to: port)
            #expect(client.receive(timeout: .milliseconds(200)) == nil)
            client.send(TFTPPacket.error(.notDefined, message: "done"), to: port)
            try await fixture.waitUntilIdle()
        }
    }

    /// The file shrinks during the transfer: the blocks already read ahead (one chunk) go out
    /// as they were read, then the client gets ERROR 0, never a short final block.
    @Test func fileTruncatedDuringTransferEndsWithReadError() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest("big.bin", [("blksize", "1024"), ("windowsize", "4")]), to: fixture.port)
            let (_, port) = try #require(try client.receivePacket())
            client.send(TFTPPacket.acknowledgement(block: 0), to: port)
            for block in 1...4 {
                #expect(try client.receivePacket()?.packet.dataBlock == UInt16(block))
            }
            #expect(truncate(fixture.tree.root + "/big.bin", 5000) == 0)
            let chunk = TFTPDataPackets(blockSize: 1024, windowSize: 4, fileSize: fixture.tree.big.count).chunkBlocks
            var last: UInt16 = 4
            var end: TFTPPacket?
            windows: while Int(last) <= chunk {
                client.send(TFTPPacket.acknowledgement(block: last), to: port)
                for _ in 1...4 {
                    let packet = try #require(try client.receivePacket()?.packet)
                    guard case .data(let block, let payload) = packet else {
                        end = packet
                        break windows
                    }
                    #expect(block == last + 1 && payload.count == 1024)
                    last = block
                }
            }
            #expect(end == .error(.notDefined, message: "Read error"))
            #expect(Int(last) == chunk)
            try await fixture.waitUntilIdle()
            #expect(fixture.metrics.value("portico_tftp_transfers_total", [("outcome", "read_failed")]) == 1)
        }
    }

    @Test func concurrentTransfersAreCapped() async throws {
        let limits = TFTPConfiguration(defaultTimeout: .milliseconds(200), maximumConcurrentTransfers: 1)
        try await TFTPServerFixture.with(limits: limits) { fixture in
            let first = try TestUDPSocket()
            let second = try TestUDPSocket()
            first.send(Self.readRequest("big.bin"), to: fixture.port)
            let (_, firstPort) = try #require(try first.receivePacket())
            second.send(Self.readRequest("small.txt"), to: fixture.port)
            let (busy, _) = try #require(try second.receivePacket())
            #expect(busy == .error(.notDefined, message: "Server busy, try again later"))
            // The first client gives up; its slot is free again.
            first.send(TFTPPacket.error(.notDefined, message: "cancel"), to: firstPort)
            try await fixture.waitUntilIdle()
            second.send(Self.readRequest("small.txt"), to: fixture.port)
            let (data, _) = try #require(try second.receivePacket())
            #expect(data == .data(block: 1, payload: fixture.tree.small))
        }
    }

    /// A retransmitted RRQ from the same client port does not start a second transfer.
    @Test func repeatedRequestFromSameClientPortStartsOneTransfer() async throws {
        try await TFTPServerFixture.with { fixture in
            let client = try TestUDPSocket()
            client.send(Self.readRequest("big.bin"), to: fixture.port)
            client.send(Self.readRequest("big.bin"), to: fixture.port)
            let (_, port) = try #require(try client.receivePacket())
            #expect(client.receive(timeout: .milliseconds(200)) == nil)
            #expect(await fixture.server.activeTransferCount() == 1)
            client.send(TFTPPacket.error(.notDefined, message: "cancel"), to: port)
            try await fixture.waitUntilIdle()
        }
    }

    @Test func virtualFileIsServedWithItsSizeBeforeTheRoot() async throws {
        struct Menus: TFTPVirtualFileProvider {
            func contents(of path: TFTPPath, for client: SocketAddress) -> [UInt8]? {
                switch path.description {
                case "pxelinux.cfg/01-52-54-00-12-34-56": Array("DEFAULT local\nLABEL local\n  LOCALBOOT 0\n".utf8)
                case "small.txt": Array("generated\n".utf8)
                default: nil
                }
            }
        }
        try await TFTPServerFixture.with(virtualFiles: Menus()) { fixture in
            let client = try TestUDPSocket()
            let menu = Array("DEFAULT local\nLABEL local\n  LOCALBOOT 0\n".utf8)
            client.send(Self.readRequest("/pxelinux.cfg/01-52-54-00-12-34-56", [("tsize", "0")]), to: fixture.port)
            let (oack, port) = try #require(try client.receivePacket())
            #expect(oack == .optionAcknowledgement([TFTPOption(name: "tsize", value: "\(menu.count)")]))
            client.send(TFTPPacket.acknowledgement(block: 0), to: port)
            #expect(try client.receivePacket()?.packet == .data(block: 1, payload: menu))
            client.send(TFTPPacket.acknowledgement(block: 1), to: port)

            client.send(Self.readRequest("small.txt"), to: fixture.port)
            let (generated, port2) = try #require(try client.receivePacket())
            #expect(generated == .data(block: 1, payload: Array("generated\n".utf8)))
            client.send(TFTPPacket.acknowledgement(block: 1), to: port2)

            client.send(Self.readRequest("pxelinux.cfg/default"), to: fixture.port)
            #expect(try client.receivePacket()?.packet == .error(.fileNotFound, message: "File not found"))
            try await fixture.waitUntilIdle()
        }
    }

    @Test func netasciiModeConvertsLineEnds() async throws {
        try await TFTPServerFixture.with { fixture in
            try Array("one\ntwo\r\n".utf8).write(to: fixture.tree.root + "/text.cfg")
            let client = try TestUDPSocket()
            client.send(Self.readRequest("text.cfg", mode: .netascii), to: fixture.port)
            let (packet, port) = try #require(try client.receivePacket())
            #expect(packet == .data(block: 1, payload: Array("one\r\ntwo\r\0\r\n".utf8)))
            client.send(TFTPPacket.acknowledgement(block: 1), to: port)
            try await fixture.waitUntilIdle()
        }
    }

    /// `stop` closes the request socket at once and ends a stalled transfer after the grace period.
    @Test func stopEndsStalledTransfersAfterTheGracePeriod() async throws {
        let tree = try TFTPTestTree()
        defer { tree.remove() }
        let metrics = TestMetricsFactory()
        let server = TFTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, root: tree.root),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: .init(label: "test"),
            metricsFactory: metrics
        )
        let port = UInt16(try #require(try await server.start().port))
        let client = try TestUDPSocket()
        client.send(Self.readRequest("big.bin"), to: port)
        _ = try #require(try client.receivePacket())
        let started = ContinuousClock.now
        await server.stop(gracePeriod: .milliseconds(300))
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(250) && took < .seconds(3))
        #expect(await server.activeTransferCount() == 0)
        #expect(metrics.value("portico_tftp_transfers_total", [("outcome", "shutdown")]) == 1)
        while client.receive(timeout: .milliseconds(50)) != nil {}
        client.send(Self.readRequest("small.txt"), to: port)
        #expect(client.receive(timeout: .milliseconds(200)) == nil)
        await #expect(throws: TFTPServerError.alreadyStarted) { _ = try await server.start() }
    }
}

extension TFTPPacket {
    var payload: [UInt8] {
        if case .data(_, let payload) = self { return payload }
        return []
    }

    var dataBlock: UInt16? {
        if case .data(let block, _) = self { return block }
        return nil
    }
}

extension [UInt8] {
    func write(to path: String) throws {
        let file = try #require(fopen(path, "w"))
        defer { fclose(file) }
        #expect(fwrite(self, 1, self.count, file) == self.count)
    }
}
