import PorticoAllocation
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("10.0.20.200", "10.0.20.200"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80:0:0:0:1:0:0:0", "fe80::1:0:0:0"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("::ffff:a00:1", "::ffff:10.0.0.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
    ])
    func parsesAndFormatsCanonically(input: String, canonical: String) {
        #expect(IPAddress(input)?.description == canonical)
        #expect(IPAddress(canonical) == IPAddress(input))
    }

    @Test(arguments: [
        "", "10.0.0", "10.0.0.0.1", "10.0.0.256", "10.0.0.01", "10.0.0.-1", "10.0.0.1 ", "a.b.c.d",
        "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1::", "1:::2", "12345::", "g::1", "fe80::1%eth0",
        "[::1]", "1:2:3:4:5:6:7::8", "::1.2.3", "1.2.3.4::", "::10.0.0.01",
    ])
    func rejectsMalformedAddresses(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func familiesAndOrdering() {
        #expect(ip("10.0.0.1").family == .ipv4)
        #expect(ip("::1").family == .ipv6)
        #expect(ip("10.0.0.2") < ip("10.0.0.10"))
        #expect(ip("255.255.255.255") < ip("::"))
        #expect(ip("2001:db8::1") < ip("2001:db8::1:0"))
        #expect(IPAddress(ipv4: 0x0A00_14C8) == ip("10.0.20.200"))
        #expect(IPAddress(ipv6High: 0x2001_0db8_0000_0000, low: 1) == ip("2001:db8::1"))
    }

    @Test func successorCarriesAndStopsAtTheEnd() {
        #expect(ip("10.0.0.255").successor == ip("10.0.1.0"))
        #expect(ip("255.255.255.255").successor == nil)
        #expect(ip("::ffff:ffff:ffff:ffff").successor == ip("0:0:0:1::"))
        #expect(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").successor == nil)
    }

    @Test func buggyFirmwareAddresses() {
        #expect(ip("10.0.1.0").confusesBuggyFirmware)
        #expect(ip("10.0.1.255").confusesBuggyFirmware)
        #expect(!ip("10.0.1.1").confusesBuggyFirmware)
        #expect(!ip("2001:db8::").confusesBuggyFirmware)
    }
}
