import Logging
import NIOCore

/// One proxyDHCP socket's handler: decodes each datagram, asks the responder, sends the reply
/// where it says. Malformed datagrams are counted and dropped; nothing here closes the socket.
final class ProxyDHCPRequestHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let port: ProxyDHCPPort
    private let responder: ProxyDHCPResponder
    private let clientPort: UInt16
    private let logger: Logger
    private let metrics: ProxyDHCPServerMetrics

    init(
        port: ProxyDHCPPort,
        responder: ProxyDHCPResponder,
        clientPort: UInt16,
        logger: Logger,
        metrics: ProxyDHCPServerMetrics
    ) {
        self.port = port
        self.responder = responder
        self.clientPort = clientPort
        self.logger = logger
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        self.metrics.received[self.port]?.increment()
        guard let source = UDPEndpoint(envelope.remoteAddress) else {
            self.metrics.ignored.increment()
            return
        }
        let request: DHCPMessage
        do {
            request = try DHCPMessage(decoding: envelope.data.readableBytesView)
        } catch {
            self.metrics.malformed.increment()
            self.logger.debug(
                "proxydhcp dropped a malformed datagram",
                metadata: ["dhcp.source": "\(source)", "dhcp.port": "\(self.port.rawValue)", "error": "\(error)"]
            )
            return
        }
        guard let reply = self.responder.answer(to: request, receivedOn: self.port, from: source) else {
            self.metrics.ignored.increment()
            return
        }
        let bytes: [UInt8]
        do {
            bytes = try reply.message.encoded()
        } catch {
            self.metrics.sendFailures.increment()
            self.logger.error("proxydhcp reply cannot be encoded", metadata: ["error": "\(error)"])
            return
        }
        var destination = reply.destination
        if destination.port == 68 {
            destination.port = self.clientPort
        }
        let (logger, metrics, target) = (self.logger, self.metrics, destination)
        let sent = context.eventLoop.makePromise(of: Void.self)
        sent.futureResult.whenFailure { error in
            metrics.sendFailures.increment()
            logger.warning(
                "proxydhcp reply not sent",
                metadata: ["dhcp.destination": "\(target)", "error": "\(error)"]
            )
        }
        let datagram = AddressedEnvelope(
            remoteAddress: SocketAddress(destination),
            data: context.channel.allocator.buffer(bytes: bytes)
        )
        self.metrics.replies[self.port]?.increment()
        context.writeAndFlush(self.wrapOutboundOut(datagram), promise: sent)
        let bootFile =
            reply.message.bootFileName.isEmpty
            ? String(decoding: reply.message.options[DHCPOptionCode.bootFileName] ?? [], as: UTF8.self)
            : reply.message.bootFileName
        self.logger.info(
            "proxydhcp answer",
            metadata: [
                "dhcp.port": "\(self.port.rawValue)",
                "dhcp.client": "\(request.clientHardwareAddress)",
                "dhcp.xid": "\(String(request.transactionID, radix: 16))",
                "dhcp.type": "\((try? reply.message.messageType).flatMap { $0 }.map { "\($0)" } ?? "-")",
                "dhcp.boot_file": "\(bootFile)",
                "dhcp.destination": "\(destination)",
            ]
        )
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.metrics.sendFailures.increment()
        self.logger.debug(
            "proxydhcp socket error",
            metadata: ["dhcp.port": "\(self.port.rawValue)", "error": "\(error)"]
        )
    }
}
