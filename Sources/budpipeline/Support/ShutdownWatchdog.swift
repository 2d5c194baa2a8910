import BudPipelineHost
import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Makes sure a process that is asked to stop, or whose service group starts to end, does end.
///
/// ``watchSignals(_:onSignal:)`` handles SIGTERM and SIGINT with dispatch sources that are never
/// cancelled, so a signal is handled however the service group is doing (a cancelled group no
/// longer watches signals itself). The first signal, or the first service to end (see
/// ``WatchedService``), arms the watchdog: if the process is still running `deadline` later, it
/// prints one line to standard error and exits with status 1 at once (`_exit`: nothing more runs).
/// A process that stops in time never notices it.
final class ShutdownWatchdog: Sendable {
    private let command: String
    private let deadline: Duration
    private let logger: Logger
    private let queue = DispatchQueue(label: "budpipeline.shutdown-watchdog")
    private let armed = Mutex(false)

    init(command: String, deadline: Duration, logger: Logger) {
        self.command = command
        self.deadline = deadline
        self.logger = logger
    }

    /// From its return on, each of `signals` arms the watchdog and calls `onSignal` (every time:
    /// it should be idempotent). The signals' default action (ending the process at once) is
    /// replaced for good: the sources are never cancelled, and each handler keeps its source. It
    /// returns once the sources are registered, so that no signal sent afterwards is missed.
    func watchSignals(_ signals: [Int32], onSignal: @escaping @Sendable () async -> Void) async {
        for number in signals {
            #if canImport(Darwin)
                // On Darwin a kqueue source sees a signal only when its action is to ignore it.
                signal(number, SIG_IGN)
            #endif
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            let name = number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "signal \(number)"
            source.setEventHandler { [self, source] in
                _ = source
                if arm() {
                    logger.notice(
                        "stopping", metadata: ["signal": "\(name)", "deadline_seconds": "\(deadline.components.seconds)"])
                }
                // Unstructured on purpose: a signal handler runs on a dispatch queue, outside any
                // task; `onSignal` only asks the service group to shut down.
                Task { await onSignal() }
            }
            await withCheckedContinuation { (registered: CheckedContinuation<Void, Never>) in
                source.setRegistrationHandler { registered.resume() }
                source.resume()
            }
        }
    }

    /// Starts the countdown to a forced exit, unless it runs already; true when it started now.
    @discardableResult
    func arm() -> Bool {
        let first = armed.withLock { armed -> Bool in
            defer { armed = true }
            return !armed
        }
        guard first else { return false }
        let seconds = deadline.components.seconds
        let milliseconds = Int(clamping: min(max(seconds, 0), 86_400) * 1000 + deadline.components.attoseconds / 1_000_000_000_000_000)
        let line = "Error: \(command) did not stop within \(seconds) s; exiting\n"
        queue.asyncAfter(deadline: .now() + .milliseconds(milliseconds)) {
            FileHandle.standardError.write(Data(line.utf8))
            _exit(1)
        }
        return true
    }
}

/// A service that arms a ``ShutdownWatchdog`` when it ends, however it ends: the group stops
/// once one of its services has ended, and the watchdog bounds how long that takes.
struct WatchedService: Service, CustomStringConvertible {
    let service: any Service
    let watchdog: ShutdownWatchdog

    func run() async throws {
        defer { watchdog.arm() }
        try await service.run()
    }

    var description: String { "\(service)" }
}

/// SIGHUP reloads the plugins (see docs/plugins.md, "Reloading plugins"), as `POST
/// /plugins/reload` does; the signal's default action (ending the process) is replaced for good.
struct PluginReloadSignal: Sendable {
    let plugins: PluginHost
    let logger: Logger
    private static let queue = DispatchQueue(label: "budpipeline.plugin-reload-signal")

    /// Returns once the signal is watched.
    func watch() async {
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: Self.queue)
        #if canImport(Darwin)
            signal(SIGHUP, SIG_IGN)
        #endif
        source.setEventHandler { [plugins, logger, source] in
            _ = source
            logger.notice("SIGHUP: reloading plugins")
            // Unstructured on purpose: a signal handler runs on a dispatch queue, outside any
            // task; the reload is bounded (below) and refused once the host shuts down.
            Task {
                // A signal that comes while a reload runs is not lost: it waits for that one to
                // end and reloads again (what was installed after the running reload looked).
                for _ in 0..<6000 {
                    do throws(PluginHost.ReloadRefused) {
                        _ = try await plugins.reload()
                        return
                    } catch  where !error.isShuttingDown {
                        try? await Task.sleep(for: .milliseconds(50))
                    } catch {
                        logger.notice("plugin reload not started", metadata: ["reason": "\(error)"])
                        return
                    }
                }
                logger.warning("plugin reload not started: another one ran for 5 minutes")
            }
        }
        await withCheckedContinuation { (registered: CheckedContinuation<Void, Never>) in
            source.setRegistrationHandler { registered.resume() }
            source.resume()
        }
    }
}
