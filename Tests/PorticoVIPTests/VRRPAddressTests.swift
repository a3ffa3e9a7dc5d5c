import PorticoVIP
import Testing

@Suite("VRRP addresses")
struct VRRPAddressTests {
    @Test(arguments: ["10.0.20.200", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::", "fe80::1", "::ffff:10.0.0.1"])
    func roundTripsCanonicalText(text: String) throws {
        let address = try #require(VRRPAddress(text))
        #expect(address.description == text)
        #expect(VRRPAddress(bytes: address.bytes) == address)
    }

    @Test(arguments: ["", "10.0.0", "10.0.0.01", "10.0.0.256", "1::2::3", "2001:db8::1%eth0", "[::1]", "g::1"])
    func rejectsMalformedText(text: String) {
        #expect(VRRPAddress(text) == nil)
    }

    @Test func formatsIPv6PerRFC5952() {
        #expect(VRRPAddress("2001:DB8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(VRRPAddress("2001:db8:0:1:1:1:1:1")?.description == "2001:db8:0:1:1:1:1:1")
    }

    @Test func ordersByFamilyThenValue() {
        let sorted = ["2001:db8::1", "10.0.0.2", "10.0.0.10", "fe80::1"].compactMap(VRRPAddress.init).sorted()
        #expect(sorted.map(\.description) == ["10.0.0.2", "10.0.0.10", "2001:db8::1", "fe80::1"])
    }

    @Test func knowsMulticastGroupsAndLinkLocal() {
        #expect(VRRPAddress.Family.ipv4.multicastGroup.description == "224.0.0.18")
        #expect(VRRPAddress.Family.ipv6.multicastGroup.description == "ff02::12")
        #expect(VRRPAddress("fe80::1")?.isIPv6LinkLocal == true)
        #expect(VRRPAddress("febf::1")?.isIPv6LinkLocal == true)
        #expect(VRRPAddress("fec0::1")?.isIPv6LinkLocal == false)
        #expect(VRRPAddress(bytes: [1, 2, 3]) == nil)
    }
}
