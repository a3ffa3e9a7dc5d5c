#if os(Linux)
// TLS for the fast lane, on the BoringSSL that NIOSSL builds (docs/architecture.md, "TLS on
// the fast lane"). CNIOBoringSSL is not a product of swift-nio-ssl, only a target of it; it is
// imported here because it is in the build anyway, and it costs no dependency, no system
// package and no second TLS library. The calls used are BoringSSL's stable SSL API
// (SSL_CTX, SSL_new, SSL_read/SSL_write on the socket, the ALPN callback).

internal import CNIOBoringSSL
import Glibc
import NIOCore
import NIOSSL

/// One certificate's server context for the lane: the chain and key of a
/// ``CertificateStore/Entry``, TLS 1.2 and 1.3, NIOSSL's default cipher list (as the engine's
/// contexts), ALPN `h2` (where the lane takes HTTP/2) or `http/1.1`.
final class LaneTLSContext: @unchecked Sendable {
    fileprivate let context: OpaquePointer

    /// `chainPEM`: the leaf first, then its intermediates.
    init(chainPEM: String, keyPEM: String) throws {
        guard let context = SSL_CTX_new(TLS_method()) else {
            ERR_clear_error()
            throw LaneTLSError.failed("SSL_CTX_new")
        }
        self.context = context
        // (BoringSSL's error queue is per thread: what a failure below left is not the next
        // caller's.)
        var succeeded = false
        defer { if !succeeded { ERR_clear_error() } }
        guard SSL_CTX_set_min_proto_version(context, UInt16(TLS1_2_VERSION)) == 1,
            SSL_CTX_set_cipher_list(context, NIOSSL.defaultCipherSuites) == 1
        else { throw LaneTLSError.failed("TLS version or cipher list") }
        // Partial writes: SSL_write returns what one pass sent; moving buffer: the bytes of a
        // write that must be retried may have moved (the output buffer is compacted).
        _ = SSL_CTX_set_mode(context, UInt32(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        SSL_CTX_set_alpn_select_cb(context, laneSelectApplicationProtocol, nil)

        let chain = try Self.readCertificates(chainPEM)
        defer { for certificate in chain { X509_free(certificate) } }
        guard let leaf = chain.first, SSL_CTX_use_certificate(context, leaf) == 1 else {
            throw LaneTLSError.failed("the certificate")
        }
        for intermediate in chain.dropFirst() where SSL_CTX_add1_chain_cert(context, intermediate) != 1 {
            throw LaneTLSError.failed("the certificate chain")
        }
        let key = try keyPEM.utf8CString.withUnsafeBytes { bytes -> OpaquePointer in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, bytes.count - 1) else {
                throw LaneTLSError.failed("BIO_new_mem_buf")
            }
            defer { BIO_free(bio) }
            guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else { throw LaneTLSError.failed("the key") }
            return key
        }
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(context, key) == 1, SSL_CTX_check_private_key(context) == 1 else {
            throw LaneTLSError.failed("the key does not match the certificate")
        }
        succeeded = true
    }

    deinit {
        // Connections hold their own reference (SSL_new takes one).
        SSL_CTX_free(self.context)
    }

    private static func readCertificates(_ pem: String) throws -> [OpaquePointer] {
        try pem.utf8CString.withUnsafeBytes { bytes in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, bytes.count - 1) else {
                throw LaneTLSError.failed("BIO_new_mem_buf")
            }
            defer { BIO_free(bio) }
            var chain: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { chain.append(certificate) }
            ERR_clear_error()  // the end of the PEM text is reported as an error
            return chain
        }
    }

    /// A server connection on `descriptor` (non-blocking), its handshake not begun.
    func connection(on descriptor: CInt) -> LaneTLSConnection? {
        guard let ssl = SSL_new(self.context) else {
            ERR_clear_error()
            return nil
        }
        guard SSL_set_fd(ssl, descriptor) == 1 else {
            SSL_free(ssl)
            ERR_clear_error()
            return nil
        }
        SSL_set_accept_state(ssl)
        return LaneTLSConnection(ssl)
    }
}

enum LaneTLSError: Error, CustomStringConvertible {
    case failed(String)

    var description: String {
        switch self {
        case .failed(let what): "fast lane TLS: \(what) could not be set up"
        }
    }
}

/// ALPN for the lane's connections: `h2` when offered and the connection may speak it (its
/// app data set by ``LaneTLSConnection/allowHTTP2()``), else `http/1.1` when offered, else
/// none (RFC 7301 section 3.2 allows a server to choose none; the client then speaks HTTP/1.1
/// as without ALPN).
private func laneSelectApplicationProtocol(
    _ ssl: OpaquePointer?,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?,
    _ offeredLength: UInt32,
    _ argument: UnsafeMutableRawPointer?
) -> CInt {
    guard let offered, let out, let outLength else { return SSL_TLSEXT_ERR_NOACK }
    if SSL_get_ex_data(ssl, 0) != nil, let h2 = laneFindProtocol("h2", in: offered, offeredLength) {
        out.pointee = h2
        outLength.pointee = 2
        return SSL_TLSEXT_ERR_OK
    }
    guard let http1 = laneFindProtocol("http/1.1", in: offered, offeredLength) else { return SSL_TLSEXT_ERR_NOACK }
    out.pointee = http1
    outLength.pointee = 8
    return SSL_TLSEXT_ERR_OK
}

/// Where `name` (ASCII) is in an ALPN protocol list, or nil.
private func laneFindProtocol(
    _ name: StaticString,
    in offered: UnsafePointer<UInt8>,
    _ offeredLength: UInt32
) -> UnsafePointer<UInt8>? {
    let wanted = name.utf8Start
    let count = name.utf8CodeUnitCount
    var index = 0
    let end = Int(offeredLength)
    while index < end {
        let length = Int(offered[index])
        let start = index + 1
        guard start + length <= end else { break }
        if length == count, memcmp(offered + start, wanted, count) == 0 { return offered + start }
        index = start + length
    }
    return nil
}

/// A TLS server connection of the lane, reading and writing its socket itself.
/// Owned by one ``HTTPFastLane/Client``, used on the lane's thread only.
final class LaneTLSConnection {
    private let ssl: OpaquePointer

    fileprivate init(_ ssl: OpaquePointer) {
        self.ssl = ssl
    }

    deinit {
        SSL_free(self.ssl)
    }

    enum Progress {
        case done
        /// Waiting for the socket (readable or writable: the lane is told of both).
        case blocked
        case failed
    }

    /// Lets ALPN choose `h2` when the client offers it (before the handshake).
    func allowHTTP2() {
        _ = SSL_set_ex_data(self.ssl, 0, UnsafeMutableRawPointer(bitPattern: 1))
    }

    /// Whether ALPN chose `h2` (after the handshake).
    var negotiatedHTTP2: Bool {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(self.ssl, &name, &length)
        guard let name, length == 2 else { return false }
        return name[0] == UInt8(ascii: "h") && name[1] == UInt8(ascii: "2")
    }

    /// One step of the handshake.
    func handshake() -> Progress {
        let result = SSL_do_handshake(self.ssl)
        if result == 1 { return .done }
        switch SSL_get_error(self.ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .blocked
        default:
            ERR_clear_error()
            return .failed
        }
    }

    /// Reads decrypted bytes into `buffer` until the socket has no more or `limit` bytes are
    /// buffered. `drained`: the socket has nothing more now. False at the end of the stream
    /// (close_notify or not) or on an error.
    func read(into buffer: inout ByteBuffer, limit: Int, drained: inout Bool) -> Bool {
        drained = false
        while buffer.readableBytes < limit {
            buffer.dropReadBytes()
            var result: CInt = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16_384) { pointer in
                result = SSL_read(self.ssl, pointer.baseAddress, CInt(min(pointer.count, Int(CInt.max))))
                return max(Int(result), 0)
            }
            if result > 0 { continue }
            switch SSL_get_error(self.ssl, result) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                // (BoringSSL writes nothing while reading TLS: a key update is answered with
                // the next write, so want-write does not occur here; were it to, the next
                // readable edge would read on.)
                drained = true
                return true
            default:
                ERR_clear_error()
                return false
            }
        }
        return true
    }

    /// Writes what `output` holds; false when the connection failed. Bytes the socket did not
    /// take stay in `output` (the record already made of them is sent by the next call).
    func flush(_ output: inout ByteBuffer) -> Bool {
        while output.readableBytes > 0 {
            let written = output.withUnsafeReadableBytes { pointer in
                SSL_write(self.ssl, pointer.baseAddress, CInt(min(pointer.count, Int(CInt.max))))
            }
            if written > 0 {
                output.moveReaderIndex(forwardBy: Int(written))
                continue
            }
            switch SSL_get_error(self.ssl, written) {
            case SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_READ:
                if output.readerIndex >= 65_536 { output.discardReadBytes() }
                return true
            default:
                ERR_clear_error()
                return false
            }
        }
        output.rewind()
        return true
    }

    /// Sends close_notify (once; the socket may not take it, which is not waited for).
    func shutdown() {
        _ = SSL_shutdown(self.ssl)
        ERR_clear_error()
    }
}
#endif
