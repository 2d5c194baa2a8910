internal import PluginABI
import PluginSchema

/// The `bp_host_api_v1` table every plugin receives at entry.
enum HostServiceTable {
    /// One table for the process. `nonisolated(unsafe)` is safe here: the pointer is written once
    /// by the lazy (thread-safe) static initializer, the table it points to is never written again
    /// and never freed, and its functions only reach thread-safe `PluginCall` methods.
    nonisolated(unsafe) static let pointer: UnsafePointer<bp_host_api_v1> = {
        let table = UnsafeMutablePointer<bp_host_api_v1>.allocate(capacity: 1)
        table.initialize(
            to: bp_host_api_v1(
                struct_size: UInt32(MemoryLayout<bp_host_api_v1>.size),
                abi_minor: BP_ABI_MINOR,
                log: { call, level, message in
                    PluginCall.resolve(call, service: "log")?.log(level: level, message: message)
                },
                report_progress: { call, progress in
                    (PluginCall.resolve(call, service: "report_progress")?.reportProgress(progress) ?? .invalidArgument).rawValue
                },
                invoke_service: { call, request, response in
                    (PluginCall.resolve(call, service: "invoke_service")?.invokeService(request, response: response) ?? .invalidArgument)
                        .rawValue
                },
                get_config: { call, key, value in
                    (PluginCall.resolve(call, service: "get_config")?.configuration(key: key, into: value) ?? .invalidArgument).rawValue
                },
                write_output: { call, bytes in
                    (PluginCall.resolve(call, service: "write_output")?.write(output: bytes) ?? .invalidArgument).rawValue
                },
                write_error: { call, message in
                    (PluginCall.resolve(call, service: "write_error")?.write(error: message) ?? .invalidArgument).rawValue
                },
                is_cancelled: { call in
                    PluginCall.resolve(call, service: "is_cancelled")?.isCancelled == true ? 1 : 0
                }
            )
        )
        return UnsafePointer(table)
    }()
}
