import NIOCore

/// An IPv4 or IPv6 CIDR block (`192.168.1.0/24`, `fd00::/8`, or a bare address) for the
/// PROXY trust list. IPv4-mapped IPv6 peers (dual-stack listeners) match IPv4 blocks.
struct AddressBlock: Sendable, Hashable {
    /// Network-order bytes (4 or 16), host bits cleared.
    private let network: [UInt8]
    private let prefixLength: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = try? SocketAddress(ipAddress: String(parts[0]), port: 0) else { return nil }
        let bytes = ProxyHeader.bytes(of: address)
        var prefixLength = bytes.count * 8
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...bytes.count * 8).contains(value) else { return nil }
            prefixLength = value
        }
        self.prefixLength = prefixLength
        self.network = Self.masked(bytes, prefixLength: prefixLength)
    }

    func contains(_ address: SocketAddress) -> Bool {
        let candidate = ProxyHeader.bytes(of: ProxyHeader.unmappedIPv4(address) ?? address)
        guard candidate.count == self.network.count else { return false }
        return Self.masked(candidate, prefixLength: self.prefixLength) == self.network
    }

    private static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        var result = bytes
        for index in result.indices {
            let keptBits = min(8, max(0, prefixLength - 8 * index))
            result[index] &= keptBits == 8 ? 0xFF : ~(0xFF >> UInt8(keptBits))
        }
        return result
    }
}
