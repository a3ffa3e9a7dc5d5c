#if os(Linux)
import Glibc

/// A raw IP protocol 112 socket of one family bound to one interface: joined to the VRRP
/// multicast group, sending with TTL / hop limit 255, not looping its own packets back, and
/// reading each packet's TTL (from the IPv4 header) or hop limit (`IPV6_RECVHOPLIMIT`) and
/// destination (`IPV6_RECVPKTINFO`). Needs CAP_NET_RAW. Use from one thread.
public final class RawAdvertisementSocket: AdvertisementTransport {
    /// The family.
    public let family: VRRPAddress.Family
    /// The interface index.
    public let interfaceIndex: Int32
    private let descriptor: Int32
    private var buffer = [UInt8](repeating: 0, count: 2_048)

    private static let ipv6RecvPacketInfo: Int32 = 49
    private static let ipv6PacketInfo: Int32 = 50
    private static let ipv6RecvHopLimit: Int32 = 51
    private static let ipv6HopLimit: Int32 = 52

    /// Opens the socket on `interface` (e.g. `eth0`). The socket is not bound to an address (a
    /// bound raw socket would not receive the multicast group); each send sets its source with
    /// `IP_PKTINFO` / `IPV6_PKTINFO`.
    public init(family: VRRPAddress.Family, interface: String) throws {
        self.family = family
        let index = Int32(bitPattern: if_nametoindex(interface))
        guard index > 0 else { throw LinuxSocketError("if_nametoindex(\(interface))", code: errno) }
        interfaceIndex = index
        let domain = family == .ipv4 ? AF_INET : AF_INET6
        let socketDescriptor = socket(domain, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 112)
        guard socketDescriptor >= 0 else { throw LinuxSocketError("socket(SOCK_RAW, 112)", code: errno) }
        descriptor = socketDescriptor
        do {
            try configure(interface: interface)
        } catch {
            close(socketDescriptor)
            throw error
        }
    }

    deinit { close(descriptor) }

    private func configure(interface: String) throws {
        var name = Array(interface.utf8CString)
        try check(setsockopt(descriptor, SOL_SOCKET, SO_BINDTODEVICE, &name, socklen_t(name.count)), "SO_BINDTODEVICE")
        switch family {
        case .ipv4:
            try option(IPPROTO_IP, IP_TTL, 255, "IP_TTL")
            try option(IPPROTO_IP, IP_MULTICAST_TTL, 255, "IP_MULTICAST_TTL")
            try option(IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP")
            var request = ip_mreqn()
            request.imr_multiaddr.s_addr = UInt32(0xE000_0012).bigEndian
            request.imr_ifindex = interfaceIndex
            let size = socklen_t(MemoryLayout<ip_mreqn>.size)
            try check(setsockopt(descriptor, Int32(IPPROTO_IP), IP_MULTICAST_IF, &request, size), "IP_MULTICAST_IF")
            try check(setsockopt(descriptor, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &request, size), "IP_ADD_MEMBERSHIP")
        case .ipv6:
            try option(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255, "IPV6_UNICAST_HOPS")
            try option(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255, "IPV6_MULTICAST_HOPS")
            try option(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP")
            try option(IPPROTO_IPV6, IPV6_MULTICAST_IF, interfaceIndex, "IPV6_MULTICAST_IF")
            try option(IPPROTO_IPV6, Self.ipv6RecvHopLimit, 1, "IPV6_RECVHOPLIMIT")
            try option(IPPROTO_IPV6, Self.ipv6RecvPacketInfo, 1, "IPV6_RECVPKTINFO")
            var request = ipv6_mreq()
            withUnsafeMutableBytes(of: &request.ipv6mr_multiaddr) { raw in
                for (offset, byte) in VRRPAddress.Family.ipv6.multicastGroup.bytes.enumerated() { raw[offset] = byte }
            }
            request.ipv6mr_interface = UInt32(interfaceIndex)
            let size = socklen_t(MemoryLayout<ipv6_mreq>.size)
            try check(setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_JOIN_GROUP, &request, size), "IPV6_JOIN_GROUP")
        }
    }

    public func send(_ packet: [UInt8], from source: VRRPAddress, to destination: VRRPAddress) throws {
        // One cmsghdr (64-bit layout) carrying in_pktinfo / in6_pktinfo with the source address.
        var index = [UInt8](repeating: 0, count: 4)
        withUnsafeBytes(of: interfaceIndex) { for offset in 0..<4 { index[offset] = $0[offset] } }
        let level: Int32
        let type: Int32
        let information: [UInt8]
        switch family {
        case .ipv4:
            (level, type) = (Int32(IPPROTO_IP), IP_PKTINFO)
            information = index + source.bytes + [0, 0, 0, 0]  // ifindex, spec_dst (source), addr
        case .ipv6:
            (level, type) = (Int32(IPPROTO_IPV6), Self.ipv6PacketInfo)
            information = source.bytes + index  // addr (source), ifindex
        }
        var control =
            Self.nativeBytes(UInt64(16 + information.count)) + Self.nativeBytes(level)
            + Self.nativeBytes(type) + information
        control += [UInt8](repeating: 0, count: (8 - control.count % 8) % 8)
        var payload = packet
        let sent = withSocketAddress(destination) { address, length in
            payload.withUnsafeMutableBytes { data in
                control.withUnsafeMutableBytes { controlBytes in
                    var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                    return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                        var message = msghdr()
                        message.msg_name = UnsafeMutableRawPointer(mutating: address)
                        message.msg_namelen = length
                        message.msg_iov = vectorPointer
                        message.msg_iovlen = 1
                        message.msg_control = controlBytes.baseAddress
                        message.msg_controllen = controlBytes.count
                        return sendmsg(descriptor, &message, 0)
                    }
                }
            }
        }
        guard sent == packet.count else { throw LinuxSocketError("sendmsg(VRRP to \(destination))", code: errno) }
    }

    private static func nativeBytes<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    public func receive(timeout: Duration) throws -> ReceivedPacket? {
        while true {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let (seconds, attoseconds) = timeout.components
            let milliseconds = Int32(
                clamping: seconds * 1_000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            )
            let ready = poll(&poller, 1, max(0, milliseconds))
            if ready < 0 && errno == EINTR { continue }
            guard ready >= 0 else { throw LinuxSocketError("poll", code: errno) }
            if ready == 0 { return nil }
            // Nil for a packet without a usable IPv4 header; the caller re-evaluates its timers.
            return try receiveOne()
        }
    }

    private func receiveOne() throws -> ReceivedPacket? {
        var source = sockaddr_storage()
        var control = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                withUnsafeMutablePointer(to: &source) { sourcePointer in
                    var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                    return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                        var message = msghdr()
                        message.msg_name = UnsafeMutableRawPointer(sourcePointer)
                        message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                        message.msg_iov = vectorPointer
                        message.msg_iovlen = 1
                        message.msg_control = controlBytes.baseAddress
                        message.msg_controllen = controlBytes.count
                        let received = recvmsg(descriptor, &message, Int32(MSG_DONTWAIT))
                        if received >= 0 { controlLength = Int(message.msg_controllen) }
                        return received
                    }
                }
            }
        }
        guard count >= 0 else {
            if errno == EAGAIN || errno == EINTR { return nil }
            throw LinuxSocketError("recvmsg", code: errno)
        }
        let bytes = Array(buffer[0..<count])
        switch family {
        case .ipv4:
            guard let view = IPv4PacketView(bytes) else { return nil }
            return ReceivedPacket(
                payload: Array(view.payload),
                source: view.source,
                destination: view.destination,
                hopLimit: view.timeToLive
            )
        case .ipv6:
            let sourceAddress = withUnsafeBytes(of: &source) { raw -> VRRPAddress? in
                VRRPAddress(bytes: raw[8..<24])  // sockaddr_in6.sin6_addr
            }
            guard let sourceAddress else { return nil }
            var hopLimit: UInt8 = 0
            var destination = VRRPAddress.Family.ipv6.multicastGroup
            ControlMessages.forEach(Array(control[0..<controlLength])) { level, type, data in
                guard level == Int32(IPPROTO_IPV6) else { return }
                if type == Self.ipv6HopLimit, data.count >= 4 {
                    hopLimit = UInt8(truncatingIfNeeded: data[data.startIndex])
                }
                if type == Self.ipv6PacketInfo, data.count >= 16, let address = VRRPAddress(bytes: data.prefix(16)) {
                    destination = address
                }
            }
            return ReceivedPacket(payload: bytes, source: sourceAddress, destination: destination, hopLimit: hopLimit)
        }
    }

    private var controlLength = 0

    private func option(_ level: Int32, _ name: Int32, _ value: Int32, _ label: String) throws {
        var value = value
        try check(setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<Int32>.size)), label)
    }

    private func option(_ level: Int, _ name: Int32, _ value: Int32, _ label: String) throws {
        try option(Int32(level), name, value, label)
    }

    private func check(_ result: Int32, _ label: String) throws {
        guard result == 0 else { throw LinuxSocketError("setsockopt(\(label))", code: errno) }
    }

    private func withSocketAddress<Result>(
        _ address: VRRPAddress,
        _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result
    ) -> Result {
        switch address {
        case .ipv4(let value):
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_addr.s_addr = value.bigEndian
            return withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .ipv6:
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_scope_id = UInt32(interfaceIndex)
            withUnsafeMutableBytes(of: &socketAddress.sin6_addr) { raw in
                for (offset, byte) in address.bytes.enumerated() { raw[offset] = byte }
            }
            return withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }
}

/// Walks `cmsghdr` records (64-bit Linux layout: 8-byte length, level, type, 8-byte alignment).
enum ControlMessages {
    static func forEach(_ control: [UInt8], _ body: (Int32, Int32, ArraySlice<UInt8>) -> Void) {
        var offset = 0
        let headerSize = MemoryLayout<cmsghdr>.size
        while offset + headerSize <= control.count {
            let length = control[offset..<offset + 8].reversed().reduce(0) { $0 << 8 | Int($1) }
            guard length >= headerSize, offset + length <= control.count else { return }
            let level = Int32(
                bitPattern: control[offset + 8..<offset + 12].reversed().reduce(0) { $0 << 8 | UInt32($1) }
            )
            let type = Int32(
                bitPattern: control[offset + 12..<offset + 16].reversed().reduce(0) { $0 << 8 | UInt32($1) }
            )
            body(level, type, control[offset + headerSize..<offset + length])
            offset += (length + 7) & ~7
        }
    }
}
#endif
