import Testing

@testable import PorticoNetboot

@Suite struct TFTPPacketTests {
    @Test func readRequestWithOptionsRoundTrips() throws {
        let wire: [UInt8] = [0, 1] + Array("pxelinux.0\0octet\0tsize\00\0blksize\01468\0".utf8)
        let packet = try TFTPPacket(decoding: wire)
        let expected = TFTPPacket.readRequest(
            TFTPRequest(
                fileName: "pxelinux.0",
                mode: .octet,
                options: [TFTPOption(name: "tsize", value: "0"), TFTPOption(name: "blksize", value: "1468")]
            )
        )
        #expect(packet == expected)
        #expect(packet.encoded() == wire)
    }

    @Test func everyOpcodeRoundTrips() throws {
        let packets: [TFTPPacket] = [
            .writeRequest(TFTPRequest(fileName: "x", mode: .netascii)),
            .data(block: 65535, payload: [1, 2, 3]),
            .data(block: 0, payload: []),
            .acknowledgement(block: 7),
            .error(.fileNotFound, message: "File not found"),
            .optionAcknowledgement([TFTPOption(name: "windowsize", value: "4")]),
            .optionAcknowledgement([]),
        ]
        for packet in packets {
            #expect(try TFTPPacket(decoding: packet.encoded()) == packet)
        }
    }

    @Test func modeIsCaseInsensitiveAndTrailingPaddingIsAccepted() throws {
        let wire: [UInt8] = [0, 1] + Array("a\0OCTET\0\0\0".utf8)
        #expect(try TFTPPacket(decoding: wire) == .readRequest(TFTPRequest(fileName: "a", mode: .octet)))
    }

    @Test func errorWithoutTerminatorIsStillAnError() throws {
        #expect(try TFTPPacket(decoding: [0, 5, 0, 0] + Array("abort".utf8)) == .error(.notDefined, message: "abort"))
    }

    @Test func malformedPacketsAreTypedErrors() {
        #expect(throws: TFTPDecodingError.truncated(length: 1)) { try TFTPPacket(decoding: [0]) }
        #expect(throws: TFTPDecodingError.unknownOpcode(9)) { try TFTPPacket(decoding: [0, 9, 0, 0]) }
        #expect(throws: TFTPDecodingError.truncated(length: 3)) { try TFTPPacket(decoding: [0, 4, 0]) }
        #expect(throws: TFTPDecodingError.unterminatedString) { try TFTPPacket(decoding: [0, 1, 0x61]) }
        #expect(throws: TFTPDecodingError.emptyFileName) {
            try TFTPPacket(decoding: [0, 1, 0] + Array("octet\0".utf8))
        }
        #expect(throws: TFTPDecodingError.unknownMode("binary")) {
            try TFTPPacket(decoding: [0, 1] + Array("a\0binary\0".utf8))
        }
        #expect(throws: TFTPDecodingError.optionWithoutValue("tsize")) {
            try TFTPPacket(decoding: [0, 1] + Array("a\0octet\0tsize\0".utf8))
        }
        #expect(throws: TFTPDecodingError.payloadTooLong(65465)) {
            try TFTPPacket(decoding: [0, 3, 0, 1] + [UInt8](repeating: 0, count: 65465))
        }
    }

    @Test func fuzzedInputNeverTraps() {
        var random = SeededGenerator(seed: 1350)
        let seed: [UInt8] = [0, 1] + Array("pxelinux.cfg/default\0octet\0tsize\00\0blksize\01468\0".utf8)
        var decoded = 0
        var admission = TFTPAdmission(configuration: TFTPConfiguration(maximumConcurrentTransfers: 1_000_000))
        for round in 0..<10_000 {
            var bytes = seed
            if round.isMultiple(of: 2) {
                for _ in 0..<Int.random(in: 1...6, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
            } else {
                bytes =
                    [0, UInt8.random(in: 0...7, using: &random)]
                    + random.bytes(count: Int.random(in: 0...40, using: &random))
            }
            if (try? TFTPPacket(decoding: bytes)) != nil { decoded += 1 }
            _ = admission.admit(bytes)
        }
        #expect(decoded > 500)
    }
}

@Suite struct TFTPNegotiationTests {
    let configuration = TFTPConfiguration(maximumBlockSize: 1468, maximumWindowSize: 16)

    func negotiate(_ options: [(String, String)], fileSize: Int = 1000) -> TFTPTransferParameters {
        TFTPTransferParameters(
            negotiating: options.map { TFTPOption(name: $0.0, value: $0.1) },
            fileSize: fileSize,
            configuration: self.configuration
        )
    }

    @Test func acceptedOptionsAreClampedAndEchoed() {
        let parameters = self.negotiate([("BLKSIZE", "9000"), ("timeout", "3"), ("tsize", "0"), ("windowsize", "64")])
        #expect(parameters.blockSize == 1468)
        #expect(parameters.windowSize == 16)
        #expect(parameters.timeout == .seconds(3))
        #expect(
            parameters.acceptedOptions == [
                TFTPOption(name: "blksize", value: "1468"), TFTPOption(name: "timeout", value: "3"),
                TFTPOption(name: "tsize", value: "1000"), TFTPOption(name: "windowsize", value: "16"),
            ]
        )
    }

    @Test func invalidAndUnknownOptionsAreLeftOut() {
        let parameters = self.negotiate([
            ("blksize", "7"), ("timeout", "0"), ("timeout", "256"), ("windowsize", "0"), ("windowsize", "65536"),
            ("multicast", ""), ("tsize", "x"), ("rollover", "0"),
        ])
        #expect(parameters.acceptedOptions.isEmpty)
        #expect(parameters.blockSize == 512)
        #expect(parameters.windowSize == 1)
        #expect(parameters.timeout == .seconds(1))
    }

    @Test func boundaryValuesAreAccepted() {
        let parameters = self.negotiate([("blksize", "8"), ("timeout", "255"), ("windowsize", "1")])
        #expect(parameters.blockSize == 8)
        #expect(parameters.timeout == .seconds(255))
        #expect(parameters.windowSize == 1)
        #expect(parameters.acceptedOptions.count == 3)
        #expect(self.negotiate([("blksize", "65464")]).blockSize == 1468)
    }

    @Test func repeatedOptionsUseTheFirst() {
        let parameters = self.negotiate([("blksize", "1024"), ("blksize", "8")])
        #expect(parameters.blockSize == 1024)
        #expect(parameters.acceptedOptions == [TFTPOption(name: "blksize", value: "1024")])
    }
}
