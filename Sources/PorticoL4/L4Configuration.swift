public import NIOCore

/// Everything the TCP/UDP forwarder serves: one entry per listening socket.
public struct L4Configuration: Sendable, Hashable {
    /// TCP listeners.
    public var tcp: [TCPForward]
    /// UDP listeners.
    public var udp: [UDPForward]

    /// A configuration; empty by default (no listeners).
    public init(tcp: [TCPForward] = [], udp: [UDPForward] = []) {
        self.tcp = tcp
        self.udp = udp
    }
}

/// A backend address. `host` should be an IP literal (EndpointSlice addresses are); other
/// names are resolved when a connection or flow is opened.
public struct L4Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// IPv4 or IPv6 literal (or a host name).
    public var host: String
    /// Port, 1-65535.
    public var port: Int

    /// An endpoint.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around IPv6 literals.
    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }
}

/// The PROXY protocol version sent to endpoints.
public enum ProxyProtocolVersion: String, Sendable, Hashable {
    /// The text line, `PROXY TCP4 ...\r\n` (TCP only).
    case v1
    /// The binary header (TCP and UDP).
    case v2
}

/// Whether a listener is TCP or UDP.
public enum L4Transport: String, Sendable, Hashable {
    case tcp = "TCP"
    case udp = "UDP"
}

/// The identity of a listening socket: reloads keep a socket bound while its key stays.
public struct L4ListenerKey: Sendable, Hashable, CustomStringConvertible {
    /// The configured address (as written).
    public var address: String
    /// The configured port (0 asks the kernel for one; see ``L4Engine/boundAddresses``).
    public var port: Int
    /// TCP or UDP.
    public var transport: L4Transport

    /// A key.
    public init(address: String, port: Int, transport: L4Transport) {
        self.address = address
        self.port = port
        self.transport = transport
    }

    /// `TCP 10.0.0.1:53`, `UDP [fd00::1]:53`.
    public var description: String {
        "\(self.transport.rawValue) \(L4Endpoint(host: self.address, port: self.port))"
    }
}

/// One TCP listening socket forwarding every connection to one of its endpoints.
public struct TCPForward: Sendable, Hashable {
    /// The address to bind (a virtual address this node may not hold yet is fine on Linux).
    public var address: String
    /// The port to bind; 0 picks a free one.
    public var port: Int
    /// `namespace/name` of the Service, for logs and metrics.
    public var service: String
    /// The backends, chosen round robin; on connect failure the next one is tried.
    public var endpoints: [L4Endpoint]
    /// A PROXY header sent to the endpoint before the first client byte.
    public var sendProxyProtocol: ProxyProtocolVersion?
    /// CIDRs (or bare addresses) whose connections start with a PROXY header (v1 or v2,
    /// detected). Connections from elsewhere that start with one are closed.
    public var acceptProxyProtocolFrom: [String]
    /// Time allowed to connect to one endpoint before trying the next.
    public var connectTimeout: TimeAmount
    /// A connection with no bytes either way for this long is closed (detected within 1.5x).
    public var idleTimeout: TimeAmount

    /// A TCP forward with the usual timeouts (5 s connect, 1 h idle).
    public init(
        address: String,
        port: Int,
        service: String,
        endpoints: [L4Endpoint],
        sendProxyProtocol: ProxyProtocolVersion? = nil,
        acceptProxyProtocolFrom: [String] = [],
        connectTimeout: TimeAmount = .seconds(5),
        idleTimeout: TimeAmount = .hours(1)
    ) {
        self.address = address
        self.port = port
        self.service = service
        self.endpoints = endpoints
        self.sendProxyProtocol = sendProxyProtocol
        self.acceptProxyProtocolFrom = acceptProxyProtocolFrom
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
    }

    /// The listener identity.
    public var key: L4ListenerKey { L4ListenerKey(address: self.address, port: self.port, transport: .tcp) }
}

/// One UDP listening socket; each client address and port is a flow with its own upstream socket.
public struct UDPForward: Sendable, Hashable {
    /// The address to bind. Bind the specific service address, not a wildcard: replies must
    /// leave from the address the client sent to.
    public var address: String
    /// The port to bind; 0 picks a free one.
    public var port: Int
    /// `namespace/name` of the Service, for logs and metrics.
    public var service: String
    /// The backends; each new flow takes the next one.
    public var endpoints: [L4Endpoint]
    /// `.v2` prepends a PROXY v2 header to every datagram sent to the endpoint (`.v1` is refused).
    public var sendProxyProtocol: ProxyProtocolVersion?
    /// A flow without datagrams either way for this long is closed (detected within 1.25x).
    public var flowIdleTimeout: TimeAmount
    /// Flows allowed at once; datagrams from new clients beyond it are dropped and counted.
    public var maxFlows: Int

    /// A UDP forward with the usual limits (30 s idle, 10,000 flows).
    public init(
        address: String,
        port: Int,
        service: String,
        endpoints: [L4Endpoint],
        sendProxyProtocol: ProxyProtocolVersion? = nil,
        flowIdleTimeout: TimeAmount = .seconds(30),
        maxFlows: Int = 10_000
    ) {
        self.address = address
        self.port = port
        self.service = service
        self.endpoints = endpoints
        self.sendProxyProtocol = sendProxyProtocol
        self.flowIdleTimeout = flowIdleTimeout
        self.maxFlows = maxFlows
    }

    /// The listener identity.
    public var key: L4ListenerKey { L4ListenerKey(address: self.address, port: self.port, transport: .udp) }
}

/// Why ``L4Engine/apply(_:)`` refused a configuration (nothing was changed).
public enum L4ConfigurationError: Error, Hashable, CustomStringConvertible {
    /// The listener address is not an IP literal.
    case invalidListenerAddress(L4ListenerKey)
    /// Two forwards use the same address, port and protocol.
    case duplicateListener(L4ListenerKey)
    /// A trusted PROXY source is not a CIDR.
    case invalidTrustedSource(L4ListenerKey, String)
    /// An endpoint port is outside 1-65535.
    case invalidEndpoint(L4ListenerKey, L4Endpoint)
    /// PROXY v1 has no UDP form.
    case proxyProtocolV1OverUDP(L4ListenerKey)
    /// A timeout or limit is not positive.
    case invalidLimit(L4ListenerKey, String)

    public var description: String {
        switch self {
        case .invalidListenerAddress(let key):
            return "\(key): the listen address \"\(key.address)\" is not an IPv4 or IPv6 address"
        case .duplicateListener(let key):
            return "\(key) is configured twice; merge the two forwards or use another port"
        case .invalidTrustedSource(let key, let text):
            return "\(key): trusted PROXY source \"\(text)\" is not an address or CIDR such as 10.0.0.0/8"
        case .invalidEndpoint(let key, let endpoint):
            return "\(key): endpoint \(endpoint) has a port outside 1-65535"
        case .proxyProtocolV1OverUDP(let key):
            return "\(key): PROXY protocol v1 cannot carry UDP; use v2"
        case .invalidLimit(let key, let field):
            return "\(key): \(field) must be greater than zero"
        }
    }
}
