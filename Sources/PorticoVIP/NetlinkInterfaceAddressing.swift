#if os(Linux)
import Glibc

/// Adds and removes host addresses with rtnetlink (see `NetlinkAddressRequest`). Needs
/// CAP_NET_ADMIN. Adding an existing address and removing an absent one succeed.
public final class NetlinkInterfaceAddressing: InterfaceAddressing {
    /// The interface index.
    public let interfaceIndex: UInt32
    private let descriptor: Int32
    private var sequence: UInt32 = 0

    /// A netlink route socket for `interface`.
    public init(interface: String) throws {
        interfaceIndex = if_nametoindex(interface)
        guard interfaceIndex > 0 else { throw LinuxSocketError("if_nametoindex(\(interface))", code: errno) }
        descriptor = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)  // NETLINK_ROUTE
        guard descriptor >= 0 else { throw LinuxSocketError("socket(AF_NETLINK)", code: errno) }
    }

    deinit { close(descriptor) }

    public func add(_ addresses: [VRRPAddress]) throws {
        for address in addresses { try request(.add, address, tolerating: EEXIST) }
    }

    public func remove(_ addresses: [VRRPAddress]) throws {
        for address in addresses { try request(.remove, address, tolerating: EADDRNOTAVAIL) }
    }

    private func request(_ operation: NetlinkAddressRequest.Operation, _ address: VRRPAddress, tolerating: Int32) throws
    {
        sequence &+= 1
        let message = NetlinkAddressRequest(
            operation: operation,
            address: address,
            interfaceIndex: interfaceIndex,
            sequence: sequence
        ).bytes
        let sent = message.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else { throw LinuxSocketError("send(RTM_\(operation))", code: errno) }
        var reply = [UInt8](repeating: 0, count: 8_192)
        while true {
            let count = reply.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw LinuxSocketError("recv(netlink)", code: errno) }
            guard let code = NetlinkAddressRequest.acknowledgement(in: Array(reply[0..<count]), sequence: sequence)
            else { continue }
            guard code == 0 || code == tolerating || (operation == .remove && code == ENODEV) else {
                throw LinuxSocketError("RTM_\(operation == .add ? "NEWADDR" : "DELADDR") \(address)", code: code)
            }
            return
        }
    }
}
#endif
