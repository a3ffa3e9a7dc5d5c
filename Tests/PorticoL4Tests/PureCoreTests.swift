import NIOCore
import Testing

@testable import PorticoL4

@Suite struct UDPFlowTableTests {
    static func at(_ milliseconds: Int64) -> NIODeadline {
        .uptimeNanoseconds(UInt64(1_000_000_000 + milliseconds * 1_000_000))
    }

    @Test func insertLookupAndCapacity() {
        var table = UDPFlowTable<String, Int>(capacity: 2, idleTimeout: .seconds(30))
        let first = table.insert("a", 1, now: Self.at(0))
        let sameKeyAgain = table.insert("a", 9, now: Self.at(0))
        let second = table.insert("b", 2, now: Self.at(0))
        let beyondCapacity = table.insert("c", 3, now: Self.at(0))
        #expect(first && !sameKeyAgain && second && !beyondCapacity)
        #expect(table.isFull)
        let found = table.lookup("a", now: Self.at(1))
        let missing = table.lookup("c", now: Self.at(1))
        #expect(found == 1 && missing == nil)
        #expect(table.count == 2)
    }

    @Test func lookupAndTouchKeepFlowsAlive() {
        var table = UDPFlowTable<String, Int>(capacity: 10, idleTimeout: .milliseconds(100))
        for (index, key) in ["quiet", "chatty", "answered"].enumerated() {
            _ = table.insert(key, index, now: Self.at(0))
        }
        _ = table.lookup("chatty", now: Self.at(80))
        table.touch("answered", now: Self.at(90))
        let tooEarly = table.expire(now: Self.at(99))
        #expect(tooEarly.isEmpty)
        let expired = table.expire(now: Self.at(100))
        #expect(expired.map(\.key) == ["quiet"])
        #expect(table.peek("quiet") == nil)
        let later = table.expire(now: Self.at(190))
        #expect(Set(later.map(\.key)) == ["chatty", "answered"])
        #expect(table.count == 0)
    }

    @Test func evictAndShrinkingCapacity() {
        var table = UDPFlowTable<String, Int>(capacity: 3, idleTimeout: .seconds(1))
        for (index, key) in ["a", "b", "c"].enumerated() {
            _ = table.insert(key, index, now: Self.at(0))
        }
        table.capacity = 1
        // Existing flows are kept; new clients wait until the table is below the new capacity.
        let kept = table.lookup("c", now: Self.at(1))
        let refused = table.insert("d", 3, now: Self.at(1))
        #expect(kept == 2 && !refused)
        let evicted = table.evict("a")
        let evictedTwice = table.evict("a")
        #expect(evicted == 0 && evictedTwice == nil)
        table.evict("b")
        let stillFull = table.insert("d", 3, now: Self.at(1))
        table.evict("c")
        let admitted = table.insert("d", 3, now: Self.at(1))
        #expect(!stillFull && admitted)
        let remaining = table.removeAll()
        #expect(remaining == [3])
    }
}

@Suite struct EndpointRotationTests {
    @Test func roundRobinAndFallbackOrder() {
        var rotation = EndpointRotation()
        #expect((0..<5).map { _ in rotation.start(count: 3) } == [0, 1, 2, 0, 1])
        #expect(rotation.start(count: 0) == nil)
        // The endpoint list shrank on reload: the position wraps.
        #expect(rotation.start(count: 1) == 0)
        #expect((0..<4).map { EndpointRotation.index(start: 2, attempt: $0, count: 3) } == [2, 0, 1, nil])
    }
}

@Suite struct AddressBlockTests {
    static func address(_ ip: String) -> SocketAddress { try! SocketAddress(ipAddress: ip, port: 1) }

    @Test func membership() throws {
        let lan = try #require(AddressBlock("192.168.1.0/24"))
        #expect(lan.contains(Self.address("192.168.1.77")))
        #expect(lan.contains(Self.address("::ffff:192.168.1.77")))
        #expect(!lan.contains(Self.address("192.168.2.1")))
        #expect(!lan.contains(Self.address("::1")))
        let odd = try #require(AddressBlock("10.0.0.128/25"))
        #expect(odd.contains(Self.address("10.0.0.200")) && !odd.contains(Self.address("10.0.0.127")))
        let ula = try #require(AddressBlock("fd00::/8"))
        #expect(ula.contains(Self.address("fd12::1")) && !ula.contains(Self.address("fe80::1")))
        let host = try #require(AddressBlock("127.0.0.1"))
        #expect(host.contains(Self.address("127.0.0.1")) && !host.contains(Self.address("127.0.0.2")))
        #expect(try #require(AddressBlock("0.0.0.0/0")).contains(Self.address("8.8.8.8")))
    }

    @Test(arguments: ["", "10.0.0.0/33", "fd00::/129", "10.0.0/8", "10.0.0.0/x", "example.com"])
    func invalid(_ text: String) {
        #expect(AddressBlock(text) == nil)
    }
}

@Suite struct HalfCloseStateTests {
    @Test func clientFinishesFirst() {
        var client = HalfCloseState()
        var endpoint = HalfCloseState()
        let clientEOF = client.inputDidClose()
        let endpointShutdown = endpoint.partnerInputDidClose()
        #expect(clientEOF == .none && endpointShutdown == .shutdownOutput)
        // The endpoint answers, then ends too: both sides close once their bytes are flushed.
        let endpointEOF = endpoint.inputDidClose()
        let clientClose = client.partnerInputDidClose()
        #expect(endpointEOF == .closeWhenFlushed && clientClose == .closeWhenFlushed)
        let afterwards = client.partnerDidClose(graceful: true)
        #expect(afterwards == .none)
    }

    @Test func abnormalCloses() {
        var client = HalfCloseState()
        let endpointReset = client.partnerDidClose(graceful: true)
        let laterEOF = client.inputDidClose()
        let idle = client.closeNow()
        #expect(endpointReset == .closeWhenFlushed && laterEOF == .none && idle == .closeNow)
        var endpoint = HalfCloseState()
        let clientGone = endpoint.partnerDidClose(graceful: false)
        let laterShutdown = endpoint.partnerInputDidClose()
        #expect(clientGone == .closeNow && laterShutdown == .none)
    }
}
