import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Values by TLS server name: exact name first, then a one-label wildcard (`*.example.com`
/// answers `a.example.com`, not `a.b.example.com`). Names compare case-insensitively, without a
/// trailing dot.
struct ServerNameMap<Value: Sendable>: Sendable {
    private var exact: [String: Value] = [:]
    private var wildcard: [String: Value] = [:]

    var isEmpty: Bool { self.exact.isEmpty && self.wildcard.isEmpty }

    /// Adds `value` for `name` unless the name already has one (the first entry wins).
    mutating func insertIfAbsent(_ value: Value, for name: String) {
        let lowered = name.lowercased()
        if lowered.hasPrefix("*.") {
            let parent = String(lowered.dropFirst(2))
            if self.wildcard[parent] == nil { self.wildcard[parent] = value }
        } else if self.exact[lowered] == nil {
            self.exact[lowered] = value
        }
    }

    func lookup(_ serverName: String?) -> Value? {
        guard var name = serverName?.lowercased() else { return nil }
        if name.hasSuffix(".") { name.removeLast() }
        if let value = self.exact[name] { return value }
        if let dot = name.firstIndex(of: ".") { return self.wildcard[String(name[name.index(after: dot)...])] }
        return nil
    }
}

/// A server TLS context that asks for client certificates, for the names of one authority.
struct ClientAuthContext: Sendable {
    let authority: String
    let context: NIOSSLContext
    let verification: Verification

    /// How a presented certificate is checked.
    enum Verification: Sendable {
        /// `optional_no_ca`: any presented certificate is accepted (and reported as verified).
        case anyCertificate
        /// `on`, `optional`: the chain must lead to the authority's CA within its depth.
        case chain(ClientCertificateVerifier)
    }
}

/// What the TLS layer learnt about one downstream connection, read by its request handlers.
final class ConnectionTLSFacts {
    /// The authority whose context served the handshake, when SNI chose one.
    var authority: String?
    /// The connection's TLS handler, to ask whether the client presented a certificate.
    var handler: NIOSSLServerHandler?

    /// Whether this connection was verified by `authority` and presented a certificate.
    func presentedCertificate(verifiedBy authority: String) -> Bool {
        self.authority == authority && self.handler?.peerCertificate != nil
    }
}

typealias ConnectionTLSFactsBox = NIOLoopBoundBox<ConnectionTLSFacts>

extension HTTPEngine {
    /// Adds the TLS handler for a connection whose context depends on SNI: an `SNIHandler` reads
    /// the ClientHello's server name, then a `NIOSSLServerHandler` with the authority's context
    /// (client certificate requested) or the general one is put right after it; the buffered
    /// ClientHello is replayed into it. Only used when some name needs client certificates, so
    /// the common path keeps one handler.
    static func addSNIRoutedTLS(
        _ channel: any Channel,
        general: NIOSSLContext,
        contexts: ServerNameMap<ClientAuthContext>,
        facts: ConnectionTLSFactsBox,
        logger: Logger
    ) throws {
        let eventLoop = channel.eventLoop
        let pipeline = channel.pipeline
        let sni = ByteToMessageHandler(
            SNIHandler { result in
                let serverName: String?
                switch result {
                case .hostname(let name): serverName = name
                case .fallback: serverName = nil
                }
                let chosen = contexts.lookup(serverName)
                let handler: NIOSSLServerHandler
                switch chosen {
                case .some(let chosen):
                    switch chosen.verification {
                    case .anyCertificate:
                        handler = NIOSSLServerHandler(context: chosen.context) { _, promise in
                            promise.succeed(.certificateVerified)
                        }
                    case .chain(let verifier):
                        // Replaces BoringSSL's verification; called only when a certificate is presented.
                        let authority = chosen.authority
                        handler = NIOSSLServerHandler(context: chosen.context) { presented, promise in
                            verifier.verify(presented, promise: promise) { reason in
                                logger.info(
                                    "client certificate refused",
                                    metadata: ["authority": "\(authority)", "reason": "\(reason)"]
                                )
                            }
                        }
                    }
                case .none:
                    handler = NIOSSLServerHandler(context: general)
                }
                let connection = facts.value
                connection.authority = chosen?.authority
                connection.handler = handler
                return eventLoop.makeCompletedFuture {
                    // Right behind the SNI handler, which replays the ClientHello when it leaves.
                    let sniContext = try pipeline.syncOperations.context(
                        handlerType: ByteToMessageHandler<SNIHandler>.self
                    )
                    try pipeline.syncOperations.addHandler(handler, position: .after(sniContext.handler))
                }
            }
        )
        try pipeline.syncOperations.addHandler(sni)
    }
}
