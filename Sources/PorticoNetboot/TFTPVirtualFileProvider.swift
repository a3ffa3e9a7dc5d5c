public import NIOCore

/// Files the TFTP server generates instead of reading them from its root, such as
/// per-machine `pxelinux.cfg/01-<mac>` menus. Consulted before the root for every request.
///
/// Called on the server's event loop: render quickly and do no blocking I/O. The whole file
/// is rendered before the transfer starts, so `tsize` is answered exactly.
public protocol TFTPVirtualFileProvider: Sendable {
    /// The bytes of the generated file at `path` for the client at `client`, or `nil` when
    /// `path` is not generated (the root is consulted next).
    func contents(of path: TFTPPath, for client: SocketAddress) -> [UInt8]?
}
