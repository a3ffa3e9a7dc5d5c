import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 CIDR block, such as `10.0.0.0/8` or `fd00::/8`; a bare address is a /32 or /128.
public struct IPAddressRange: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    let network: [UInt8]
    let prefixLength: Int

    /// Parses `address[/prefix]`; `nil` when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = IPAddressRange.parse(String(parts[0])) else { return nil }
        let maximum = bytes.count * 8
        var prefix = maximum
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maximum).contains(value) else { return nil }
            prefix = value
        }
        self.network = IPAddressRange.mask(bytes, prefix)
        self.prefixLength = prefix
    }

    /// The block in CIDR notation.
    public var description: String {
        if self.network.count == 4 {
            return self.network.map(String.init).joined(separator: ".") + "/\(self.prefixLength)"
        }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(self.network[index]) << 8 | UInt16(self.network[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "/\(self.prefixLength)"
    }

    /// Whether `bytes` (4 or 16 bytes) lies inside this block. IPv4-mapped IPv6 addresses match IPv4 blocks.
    func contains(_ bytes: [UInt8]) -> Bool {
        var candidate = bytes
        if candidate.count == 16, self.network.count == 4,
            candidate[0..<10].allSatisfy({ $0 == 0 }), candidate[10] == 0xff, candidate[11] == 0xff
        {
            candidate = Array(candidate[12..<16])
        }
        guard candidate.count == self.network.count else { return false }
        return IPAddressRange.mask(candidate, self.prefixLength) == self.network
    }

    static func mask(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var result = bytes
        for index in result.indices {
            let bitsHere = max(0, min(8, prefix - index * 8))
            result[index] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
        return result
    }

    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The raw address bytes of a socket address (4 or 16), or `nil` for Unix sockets.
    static func bytes(of address: SocketAddress?) -> [UInt8]? {
        switch address {
        case .v4(let v4)?:
            var raw = v4.address.sin_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let v6)?:
            var raw = v6.address.sin6_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        default:
            return nil
        }
    }
}
