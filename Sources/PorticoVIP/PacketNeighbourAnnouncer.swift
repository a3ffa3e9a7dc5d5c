#if os(Linux)
import Glibc

/// Sends gratuitous ARP (request and reply forms) on an AF_PACKET socket and unsolicited
/// neighbour advertisements on an ICMPv6 raw socket (hop limit 255, to ff02::1). Needs CAP_NET_RAW.
public final class PacketNeighbourAnnouncer: NeighbourAnnouncing {
    /// The interface's hardware address.
    public let mac: [UInt8]
    private let interfaceIndex: Int32
    private let packetDescriptor: Int32
    private let icmpDescriptor: Int32

    /// Opens both sockets for `interface`; reads its MAC with `SIOCGIFHWADDR`.
    public init(interface: String) throws {
        interfaceIndex = Int32(bitPattern: if_nametoindex(interface))
        guard interfaceIndex > 0 else { throw LinuxSocketError("if_nametoindex(\(interface))", code: errno) }
        // Protocol 0: send only, so that the socket never queues received frames.
        packetDescriptor = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard packetDescriptor >= 0 else { throw LinuxSocketError("socket(AF_PACKET)", code: errno) }
        do {
            mac = try Self.readMAC(interface, descriptor: packetDescriptor)
        } catch {
            close(packetDescriptor)
            throw error
        }
        icmpDescriptor = socket(
            AF_INET6,
            Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
            Int32(IPPROTO_ICMPV6)
        )
        guard icmpDescriptor >= 0 else {
            close(packetDescriptor)
            throw LinuxSocketError("socket(ICMPv6)", code: errno)
        }
        var hops: Int32 = 255
        var index = interfaceIndex
        let size = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(icmpDescriptor, Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, &hops, size) == 0,
            setsockopt(icmpDescriptor, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, &index, size) == 0
        else {
            close(packetDescriptor)
            close(icmpDescriptor)
            throw LinuxSocketError("setsockopt(ICMPv6)", code: errno)
        }
    }

    deinit {
        close(packetDescriptor)
        close(icmpDescriptor)
    }

    public func announce(_ address: VRRPAddress) throws {
        switch address.family {
        case .ipv4:
            for form in AnnouncementPackets.ARPForm.allCases {
                guard let frame = AnnouncementPackets.gratuitousARP(address: address, mac: mac, form: form) else {
                    continue
                }
                // struct sockaddr_ll: family, protocol (BE), ifindex, hatype, pkttype, halen, addr[8].
                var link = [UInt8](repeating: 0, count: 20)
                link[0] = UInt8(AF_PACKET & 0xFF)
                link[2] = 0x08
                link[3] = 0x06
                withUnsafeBytes(of: interfaceIndex) { for offset in 0..<4 { link[4 + offset] = $0[offset] } }
                link[11] = 6
                for offset in 0..<6 { link[12 + offset] = 0xFF }
                let sent = frame.withUnsafeBytes { data in
                    link.withUnsafeBytes { linkBytes in
                        sendto(
                            packetDescriptor,
                            data.baseAddress,
                            data.count,
                            0,
                            linkBytes.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                            20
                        )
                    }
                }
                guard sent == frame.count else { throw LinuxSocketError("sendto(ARP \(address))", code: errno) }
            }
        case .ipv6:
            guard let message = AnnouncementPackets.unsolicitedNeighbourAdvertisement(address: address, mac: mac)
            else { return }
            var destination = sockaddr_in6()
            destination.sin6_family = sa_family_t(AF_INET6)
            destination.sin6_scope_id = UInt32(interfaceIndex)
            withUnsafeMutableBytes(of: &destination.sin6_addr) { raw in
                for (offset, byte) in AnnouncementPackets.allNodes.bytes.enumerated() { raw[offset] = byte }
            }
            let sent = message.withUnsafeBytes { data in
                withUnsafePointer(to: &destination) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(
                            icmpDescriptor,
                            data.baseAddress,
                            data.count,
                            0,
                            $0,
                            socklen_t(MemoryLayout<sockaddr_in6>.size)
                        )
                    }
                }
            }
            guard sent == message.count else { throw LinuxSocketError("sendto(NA \(address))", code: errno) }
        }
    }

    /// `SIOCGIFHWADDR` on a 40-byte `struct ifreq`: the name, then a sockaddr whose data is the MAC.
    private static func readMAC(_ interface: String, descriptor: Int32) throws -> [UInt8] {
        var request = [UInt8](repeating: 0, count: 40)
        let name = Array(interface.utf8.prefix(15))
        request.replaceSubrange(0..<name.count, with: name)
        let result = request.withUnsafeMutableBytes { ioctl(descriptor, 0x8927, $0.baseAddress!) }
        guard result == 0 else { throw LinuxSocketError("ioctl(SIOCGIFHWADDR \(interface))", code: errno) }
        return Array(request[18..<24])
    }
}
#endif
