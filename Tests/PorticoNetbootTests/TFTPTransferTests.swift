import Testing

@testable import PorticoNetboot

@Suite struct TFTPTransferTests {
    let start = ContinuousClock.now

    func transfer(
        fileSize: Int,
        blockSize: Int = 512,
        windowSize: Int = 1,
        options: [TFTPOption] = [],
        configuration: TFTPConfiguration = TFTPConfiguration()
    ) -> TFTPTransfer {
        TFTPTransfer(
            fileSize: fileSize,
            parameters: TFTPTransferParameters(
                blockSize: blockSize,
                windowSize: windowSize,
                timeout: .seconds(1),
                acceptedOptions: options
            ),
            configuration: configuration,
            now: self.start
        )
    }

    func at(_ seconds: Double) -> ContinuousClock.Instant {
        self.start + .milliseconds(Int(seconds * 1000))
    }

    func blocks(_ action: TFTPTransfer.Action) -> [TFTPBlockRun.Block] {
        guard case .sendBlocks(let run) = action else { return [] }
        return Array(run)
    }

    @Test func lockstepTransferEndsWithShortBlock() {
        var transfer = self.transfer(fileSize: 1300)
        #expect(self.blocks(transfer.start(now: self.start)) == [.init(number: 1, byteRange: 0..<512)])
        #expect(
            self.blocks(transfer.receive(.acknowledgement(block: 1), now: self.at(0.1))) == [
                .init(number: 2, byteRange: 512..<1024)
            ]
        )
        #expect(
            self.blocks(transfer.receive(.acknowledgement(block: 2), now: self.at(0.2))) == [
                .init(number: 3, byteRange: 1024..<1300)
            ]
        )
        #expect(transfer.receive(.acknowledgement(block: 3), now: self.at(0.3)) == .end(.completed))
        #expect(transfer.isEnded)
        #expect(transfer.deadline == nil)
        #expect(transfer.receive(.acknowledgement(block: 3), now: self.at(0.4)) == .wait)
    }

    @Test func sizeThatIsAMultipleOfTheBlockSizeEndsWithAnEmptyBlock() {
        var transfer = self.transfer(fileSize: 1024)
        #expect(transfer.blockCount == 3)
        _ = transfer.start(now: self.start)
        _ = transfer.receive(.acknowledgement(block: 1), now: self.start)
        #expect(
            self.blocks(transfer.receive(.acknowledgement(block: 2), now: self.start)) == [
                .init(number: 3, byteRange: 1024..<1024)
            ]
        )
        var empty = self.transfer(fileSize: 0)
        #expect(self.blocks(empty.start(now: self.start)) == [.init(number: 1, byteRange: 0..<0)])
        #expect(empty.receive(.acknowledgement(block: 1), now: self.start) == .end(.completed))
    }

    @Test func duplicateACKNeverRetransmits() {
        var transfer = self.transfer(fileSize: 5000)
        _ = transfer.start(now: self.start)
        #expect(self.blocks(transfer.receive(.acknowledgement(block: 1), now: self.at(0.1))).map(\.number) == [2])
        // The client's duplicate ACK of block 1 (it retransmitted) must not resend block 2.
        #expect(transfer.receive(.acknowledgement(block: 1), now: self.at(0.2)) == .wait)
        #expect(transfer.receive(.acknowledgement(block: 0), now: self.at(0.2)) == .wait)
        #expect(transfer.receive(.acknowledgement(block: 9), now: self.at(0.2)) == .wait)
        #expect(transfer.retransmissions == 0)
        #expect(self.blocks(transfer.receive(.acknowledgement(block: 2), now: self.at(0.3))).map(\.number) == [3])
    }

    @Test func windowAdvancesOnLastACKAndRestartsAfterAnACKInside() {
        var transfer = self.transfer(fileSize: 9 * 512 + 100, windowSize: 4)
        #expect(self.blocks(transfer.start(now: self.start)).map(\.number) == [1, 2, 3, 4])
        #expect(
            self.blocks(transfer.receive(.acknowledgement(block: 4), now: self.at(0.1))).map(\.number) == [5, 6, 7, 8]
        )
        #expect(
            self.blocks(transfer.receive(.acknowledgement(block: 6), now: self.at(0.2))).map(\.number) == [7, 8, 9, 10]
        )
        #expect(transfer.receive(.acknowledgement(block: 6), now: self.at(0.3)) == .wait)
        #expect(transfer.receive(.acknowledgement(block: 10), now: self.at(0.4)) == .end(.completed))
    }

    @Test func timeoutResendsTheWholeUnacknowledgedWindow() {
        var transfer = self.transfer(fileSize: 20 * 512, windowSize: 4)
        _ = transfer.start(now: self.start)
        _ = transfer.receive(.acknowledgement(block: 4), now: self.at(0.1))
        #expect(transfer.timerFired(now: self.at(0.5)) == .wait)
        #expect(self.blocks(transfer.timerFired(now: self.at(1.2))).map(\.number) == [5, 6, 7, 8])
        #expect(transfer.retransmissions == 4)
        #expect(transfer.deadline == self.at(2.2))
    }

    @Test func givesUpAfterBoundedRetransmissions() {
        var transfer = self.transfer(fileSize: 100, configuration: TFTPConfiguration(maximumRetransmissions: 3))
        _ = transfer.start(now: self.start)
        for attempt in 1...3 {
            #expect(self.blocks(transfer.timerFired(now: self.at(Double(attempt) * 1.01))).map(\.number) == [1])
        }
        #expect(transfer.timerFired(now: self.at(4.1)) == .end(.timedOut))
        #expect(transfer.timerFired(now: self.at(9)) == .wait)
    }

    @Test func progressResetsTheRetransmissionCountButTotalTimeIsBounded() {
        let configuration = TFTPConfiguration(maximumRetransmissions: 1, maximumTransferDuration: .seconds(10))
        var transfer = self.transfer(fileSize: 100 * 512, configuration: configuration)
        _ = transfer.start(now: self.start)
        var now = 0.0
        for block in 1...8 {
            now += 1.01
            #expect(self.blocks(transfer.timerFired(now: self.at(now))).map(\.number) == [UInt16(block)])
            _ = transfer.receive(.acknowledgement(block: UInt16(block)), now: self.at(now))
        }
        #expect(transfer.timerFired(now: self.at(10.5)) == .end(.timedOut))
    }

    @Test func blockNumbersWrapPast65535() {
        let blockCount = 70_000
        var transfer = self.transfer(fileSize: 8 * (blockCount - 1) + 3, blockSize: 8, windowSize: 1000)
        var numbers: [UInt16] = []
        var action = transfer.start(now: self.start)
        while case .sendBlocks(let run) = action {
            // A duplicate of the previous ACK, and after the wrap a stale one from before it, are ignored.
            #expect(transfer.receive(.acknowledgement(block: run.blockNumbers[0] &- 1), now: self.start) == .wait)
            if numbers.count > 66_000 {
                #expect(transfer.receive(.acknowledgement(block: 65000), now: self.start) == .wait)
            }
            numbers += run.blockNumbers
            action = transfer.receive(.acknowledgement(block: numbers.last!), now: self.start)
        }
        #expect(action == .end(.completed))
        #expect(numbers.count == blockCount)
        #expect(numbers[65534] == 65535)
        #expect(numbers[65535] == 0)
        #expect(numbers[65536] == 1)
    }

    @Test func optionAcknowledgementWaitsForACKZero() {
        let options = [TFTPOption(name: "blksize", value: "1468")]
        var transfer = self.transfer(fileSize: 3000, blockSize: 1468, options: options)
        #expect(transfer.start(now: self.start) == .send(.optionAcknowledgement(options)))
        #expect(transfer.receive(.acknowledgement(block: 1), now: self.at(0.1)) == .wait)
        #expect(transfer.timerFired(now: self.at(1.1)) == .send(.optionAcknowledgement(options)))
        #expect(
            self.blocks(transfer.receive(.acknowledgement(block: 0), now: self.at(1.2))) == [
                .init(number: 1, byteRange: 0..<1468)
            ]
        )
    }

    @Test func clientErrorEndsQuietly() {
        var transfer = self.transfer(fileSize: 3000, options: [TFTPOption(name: "tsize", value: "3000")])
        _ = transfer.start(now: self.start)
        #expect(
            transfer.receive(.error(.notDefined, message: ""), now: self.at(0.1))
                == .end(.abortedByClient(.notDefined, message: ""))
        )
        #expect(transfer.timerFired(now: self.at(5)) == .wait)
    }

    @Test func illegalPacketGetsErrorFour() {
        var transfer = self.transfer(fileSize: 3000)
        _ = transfer.start(now: self.start)
        let action = transfer.receive(.data(block: 1, payload: []), now: self.at(0.1))
        #expect(
            action
                == .sendErrorAndEnd(
                    .error(.illegalOperation, message: "Illegal TFTP operation"),
                    .protocolError(.illegalOperation)
                )
        )
        #expect(transfer.isEnded)
    }

    /// EDK2: RRQ with tsize only, OACK, ERROR 0, then a second RRQ with blksize and windowsize.
    @Test func edk2ProbeThenRealTransfer() throws {
        var admission = TFTPAdmission(configuration: TFTPConfiguration())
        let fileSize = 1_000_000
        let probe = TFTPPacket.readRequest(
            TFTPRequest(fileName: "ipxe.efi", options: [TFTPOption(name: "tsize", value: "0")])
        )
        guard case .serve(let request, let path) = admission.admit(probe.encoded()) else {
            Issue.record("probe not admitted")
            return
        }
        #expect(path.description == "ipxe.efi")
        let parameters = TFTPTransferParameters(
            negotiating: request.options,
            fileSize: fileSize,
            configuration: admission.configuration
        )
        var first = TFTPTransfer(
            fileSize: fileSize,
            parameters: parameters,
            configuration: admission.configuration,
            now: self.start
        )
        #expect(
            first.start(now: self.start) == .send(.optionAcknowledgement([TFTPOption(name: "tsize", value: "1000000")]))
        )
        let abort = try TFTPPacket(decoding: [0, 5, 0, 0, 0])
        guard case .end = first.receive(abort, now: self.at(0.01)) else {
            Issue.record("the abort did not end the probe")
            return
        }
        admission.release()
        #expect(admission.activeTransfers == 0)

        let real = TFTPPacket.readRequest(
            TFTPRequest(
                fileName: "ipxe.efi",
                options: [TFTPOption(name: "blksize", value: "1468"), TFTPOption(name: "windowsize", value: "4")]
            )
        )
        guard case .serve(let second, _) = admission.admit(real.encoded()) else {
            Issue.record("second request not admitted")
            return
        }
        let negotiated = TFTPTransferParameters(
            negotiating: second.options,
            fileSize: fileSize,
            configuration: admission.configuration
        )
        var transfer = TFTPTransfer(
            fileSize: fileSize,
            parameters: negotiated,
            configuration: admission.configuration,
            now: self.at(0.02)
        )
        guard case .send(.optionAcknowledgement(let accepted)) = transfer.start(now: self.at(0.02)) else {
            Issue.record("no OACK")
            return
        }
        #expect(accepted.map(\.value) == ["1468", "4"])
        let window = self.blocks(transfer.receive(.acknowledgement(block: 0), now: self.at(0.03)))
        #expect(window.map(\.number) == [1, 2, 3, 4])
        #expect(window.last?.byteRange == 4404..<5872)
    }
}
