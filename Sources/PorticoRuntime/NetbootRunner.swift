import Logging
import NIOCore
import PorticoNetboot

/// Starts, reconfigures and stops network boot as plans come: the servers run while the plan
/// has a netboot configuration. The install ledger is read from the state directory on first
/// use (a corrupt one stops the start rather than reinstalling machines).
actor NetbootRunner {
    private let stateDirectory: String?
    private let group: any EventLoopGroup
    private let logger: Logger
    private var service: NetbootService?

    init(stateDirectory: String?, group: any EventLoopGroup, logger: Logger) {
        self.stateDirectory = stateDirectory
        self.group = group
        self.logger = logger
    }

    func apply(_ configuration: NetbootConfiguration?) async throws {
        if configuration == nil && self.service == nil { return }
        let service: NetbootService
        if let existing = self.service {
            service = existing
        } else {
            let ledger = try InstallLedger(stateDirectory: self.stateDirectory)
            if self.stateDirectory == nil {
                self.logger.warning(
                    "netboot without --state-dir: completed installs are remembered in memory only; after a restart, machines whose Machine says boot: install would install again"
                )
            }
            service = NetbootService(ledger: ledger, group: self.group, logger: self.logger)
            self.service = service
        }
        try await service.apply(configuration)
    }

    func stop() async {
        await self.service?.stop()
    }
}
