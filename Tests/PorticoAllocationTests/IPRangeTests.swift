import PorticoAllocation
import Testing

@Suite struct IPRangeTests {
    @Test func homelabRangeIsItsMinimalCIDRs() throws {
        let range = try IPRange.parse("10.0.20.200-10.0.20.220").get()
        #expect(
            range.cidrs.map(\.description) == ["10.0.20.200/29", "10.0.20.208/29", "10.0.20.216/30", "10.0.20.220/32"]
        )
        #expect(range.description == "10.0.20.200-10.0.20.220")
    }

    @Test(arguments: [
        ("10.0.0.0-10.0.0.255", ["10.0.0.0/24"]),
        ("10.0.0.1-10.0.0.1", ["10.0.0.1/32"]),
        ("10.0.0.255-10.0.1.1", ["10.0.0.255/32", "10.0.1.0/31"]),
        ("0.0.0.0-255.255.255.255", ["0.0.0.0/0"]),
        ("2001:db8::1-2001:db8::4", ["2001:db8::1/128", "2001:db8::2/127", "2001:db8::4/128"]),
        ("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ["::/0"]),
        ("2001:db8::/64", ["2001:db8::/64"]),
        ("10.0.0.7/24", ["10.0.0.0/24"]),
        (" 10.0.0.1 - 10.0.0.2 ", ["10.0.0.1/32", "10.0.0.2/32"]),
    ])
    func decomposesIntoMinimalCIDRs(text: String, expected: [String]) throws {
        #expect(try IPRange.parse(text).get().cidrs.map(\.description) == expected)
    }

    @Test func reportsWhyAnEntryIsInvalid() {
        #expect(
            IPRange.parse("10.0.0.9-10.0.0.1").failure?.description
                == "invalid range \"10.0.0.9-10.0.0.1\": start 10.0.0.9 is after end 10.0.0.1"
        )
        #expect(
            IPRange.parse("10.0.0.1-2001:db8::1").failure?.description
                == "invalid range \"10.0.0.1-2001:db8::1\": start is IPv4 but end is IPv6"
        )
        #expect(IPRange.parse("10.0.0.5").failure == .missingPrefixLength("10.0.0.5"))
        #expect(IPRange.parse("10.0.0.5").failure?.description.contains("\"10.0.0.5/32\"") == true)
        #expect(IPRange.parse("10.0.0.0/33").failure == .unparsable("10.0.0.0/33"))
        #expect(IPRange.parse("banana").failure?.description.hasPrefix("invalid CIDR or range \"banana\"") == true)
        #expect(IPRange.parse("10.0.0.1-10.0.0.x").failure == .invalidAddress("10.0.0.x", entry: "10.0.0.1-10.0.0.x"))
    }

    @Test func containmentAndOverlap() throws {
        let range = try IPRange.parse("10.0.20.200-10.0.20.220").get()
        #expect(range.contains(ip("10.0.20.200")))
        #expect(range.contains(ip("10.0.20.220")))
        #expect(!range.contains(ip("10.0.20.221")))
        #expect(!range.contains(ip("::ffff:10.0.20.200")))
        #expect(range.overlaps(try IPRange.parse("10.0.20.0/27").get()) == false)
        #expect(range.overlaps(try IPRange.parse("10.0.20.192/27").get()))
        #expect(range.overlaps(try IPRange.parse("10.0.20.220-10.0.20.230").get()))
        #expect(!range.overlaps(try IPRange.parse("::/0").get()))
        let cidr = try #require(CIDR("2001:db8::/126"))
        #expect(cidr.last == ip("2001:db8::3"))
        #expect(cidr.contains(ip("2001:db8::3")) && !cidr.contains(ip("2001:db8::4")))
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
