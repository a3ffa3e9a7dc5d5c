import Foundation

/// Child processes for the integration tests, with posix_spawn and waitpid.
///
/// Foundation's `Process.waitUntilExit` was seen to hang here (the child left as a zombie)
/// when several children were started from Swift concurrency threads; a direct waitpid
/// has no such dependency.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private var exitStatus: Int32?

    /// Where a child's output stream goes.
    enum Output {
        case null
        case file(String)
        case descriptor(Int32)
    }

    /// Starts `arguments[0]` (looked up in PATH) with standard input from /dev/null.
    init(_ arguments: [String], stdout: Output = .null, stderr: Output = .null) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for (descriptor, output) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch output {
            case .null: posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, descriptor)
            }
        }
        // Children of test threads would inherit their blocked signals (dispatch's worker
        // threads block most), and then ignore SIGTERM: start them with an empty mask and
        // default handlers.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let cArguments = arguments.map { strdup($0) } + [nil]
        defer {
            for argument in cArguments { free(argument) }
        }
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, cArguments, environ)
        guard result == 0 else { throw ChildError.spawn(arguments[0], result) }
        self.pid = pid
    }

    /// Whether the child is still running (reaps it when it has exited).
    var isRunning: Bool {
        if exitStatus != nil { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = Self.decode(status)
            return false
        }
        return true
    }

    /// Waits for the exit status (128 + signal when killed).
    @discardableResult
    func wait() -> Int32 {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        exitStatus = Self.decode(status)
        return exitStatus!
    }

    func signal(_ signal: Int32) {
        if exitStatus == nil { kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL if the child is still there after `grace` seconds.
    @discardableResult
    func stop(grace: Double = 5) -> Int32 {
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning { signal(SIGKILL) }
        return wait()
    }

    private static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// Runs a command to completion and returns its status and standard output (and,
    /// when `stderrPath` is given, its standard error goes there).
    static func run(_ arguments: [String], stderrPath: String? = nil) throws -> (status: Int32, output: String) {
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { throw ChildError.spawn("pipe", errno) }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                arguments,
                stdout: .descriptor(pipe[1]),
                stderr: stderrPath.map(Output.file) ?? .null
            )
        } catch {
            close(pipe[0])
            close(pipe[1])
            throw error
        }
        close(pipe[1])
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(pipe[0], &buffer, buffer.count)
            if count > 0 {
                output += buffer[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        close(pipe[0])
        return (child.wait(), String(decoding: output, as: UTF8.self))
    }

    enum ChildError: Error {
        case spawn(String, Int32)
    }
}
