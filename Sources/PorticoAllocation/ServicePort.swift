/// A Service port's transport protocol.
public enum TransportProtocol: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"

    public static func < (lhs: TransportProtocol, rhs: TransportProtocol) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A (protocol, port) pair a Service exposes on its load-balancer address, written `53/UDP`.
public struct ServicePort: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The transport protocol.
    public var `protocol`: TransportProtocol
    /// The port number on the load-balancer address (`spec.ports[].port`).
    public var port: Int

    /// A port.
    public init(_ protocol: TransportProtocol, _ port: Int) {
        self.protocol = `protocol`
        self.port = port
    }

    /// Parses `53/UDP`; nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = Int(parts[0]), (0...65535).contains(port),
            let transport = TransportProtocol(rawValue: String(parts[1]))
        else { return nil }
        self.init(transport, port)
    }

    public static func < (lhs: ServicePort, rhs: ServicePort) -> Bool {
        (lhs.port, lhs.protocol) < (rhs.port, rhs.protocol)
    }

    /// `53/UDP`, as MetalLB writes it.
    public var description: String { "\(port)/\(self.protocol.rawValue)" }
}

extension ServicePort: Codable {
    /// Decodes `53/UDP`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let port = ServicePort(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not port/PROTOCOL")
        }
        self = port
    }

    /// Encodes `53/UDP`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
