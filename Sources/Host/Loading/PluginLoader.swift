import BudJSON
import Foundation
internal import PluginABI
import PluginSchema

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a plugin library was not loaded: one line that names the file.
public struct PluginRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Path of the library.
    public let file: String
    /// What is wrong, without the file name.
    public let reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = Self.singleLine(reason)
    }

    public var description: String { "\(file): \(reason)" }

    static func singleLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}

/// Opens plugin libraries and checks their descriptors, without running any of their functions
/// other than the entry function.
public enum PluginLoader {
    /// Loads `file`, calls its entry function and validates everything the descriptor declares.
    ///
    /// With `fresh`, a copy of the file is opened instead: the dynamic linker hands out the
    /// library it already loaded under a name, so a library upgraded in place is new to this
    /// process only under a name it never saw (a reload). The copy is deleted once open; the
    /// image names `file`.
    public static func open(_ file: String, fresh: Bool = false) throws(PluginRefusal) -> PluginImage {
        func refuse(_ reason: String) -> PluginRefusal { PluginRefusal(file: file, reason: reason) }

        var path = file
        var copy: URL?
        if fresh {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-reload-\(UUID().uuidString)")
            let target = directory.appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent)
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
                try FileManager.default.copyItem(atPath: file, toPath: target.path)
            } catch {
                try? FileManager.default.removeItem(at: directory)
                throw refuse("cannot copy the library to load it again: \(error.localizedDescription)")
            }
            path = target.path
            copy = directory
        }
        defer { if let copy { try? FileManager.default.removeItem(at: copy) } }

        _ = dlerror()
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw refuse("cannot load the library: \(lastDynamicLinkerError())")
        }
        // Libraries are never closed: a Swift library cannot be unloaded safely, and a plugin's
        // descriptor must stay valid for as long as the process runs.
        guard let symbol = dlsym(handle, BP_PLUGIN_ENTRY_V1_SYMBOL) else {
            throw refuse(missingEntryReason(handle: handle))
        }
        let entry = unsafeBitCast(symbol, to: bp_plugin_entry_v1_fn.self)
        guard let descriptor = entry(HostServiceTable.pointer) else {
            throw refuse("the entry function \(BP_PLUGIN_ENTRY_V1_SYMBOL) returned no descriptor (NULL)")
        }
        do {
            return try image(of: UnsafeRawPointer(descriptor), file: file)
        } catch let reason {
            throw refuse(reason.message)
        }
    }

    private static func missingEntryReason(handle: UnsafeMutableRawPointer) -> String {
        let base = "no entry symbol \(BP_PLUGIN_ENTRY_V1_SYMBOL): not a BudPipeline plugin"
        for major in (ABILayout.hostMajor + 1)...(ABILayout.hostMajor + 8) where dlsym(handle, "bp_plugin_entry_v\(major)") != nil {
            return "\(base) for ABI major \(ABILayout.hostMajor); it exports bp_plugin_entry_v\(major) "
                + "(ABI major \(major)), which needs a newer host"
        }
        return base
    }

    private static func lastDynamicLinkerError() -> String {
        guard let message = dlerror() else { return "unknown dlopen error" }
        return String(cString: message)
    }

    /// Validates a descriptor in the order the ABI promises: size for the signature, signature,
    /// full size, manifest, actions.
    static func image(of descriptor: UnsafeRawPointer, file: String) throws(SchemaError) -> PluginImage {
        let declaredSize = Int(descriptor.load(as: UInt32.self))
        guard declaredSize >= ABILayout.signatureEnd else {
            throw SchemaError(
                "descriptor struct_size \(declaredSize) is too small to hold the build signature (\(ABILayout.signatureEnd) bytes)"
            )
        }
        let signatureOffset = MemoryLayout<bp_plugin_descriptor_v1>.offset(of: \.signature)!
        let signature = descriptor.load(fromByteOffset: signatureOffset, as: bp_build_signature.self)
        try check(signature)
        guard declaredSize >= ABILayout.descriptorMinimumSize else {
            throw SchemaError(
                "descriptor struct_size \(declaredSize) is smaller than the ABI 1.0 minimum of \(ABILayout.descriptorMinimumSize) bytes"
            )
        }
        let fields = ABILayout.read(bp_plugin_descriptor_v1.self, from: descriptor, declaredSize: declaredSize)
        let manifest = try PluginManifest(json: try parse(fields.manifest_json, what: "manifest"))
        guard fields.action_count > 0 else { throw SchemaError("the plugin declares no actions (action_count is 0)") }
        guard let actionTable = fields.actions else {
            throw SchemaError("action_count is \(fields.action_count) but actions is NULL")
        }
        var actions: [ActionMetadata] = []
        var entryPoints: [PluginEntryPoints.Action] = []
        var firstIndex: [String: Int] = [:]
        for index in 0..<Int(fields.action_count) {
            let (metadata, functions) = try action(at: index, of: actionTable)
            if let earlier = firstIndex[metadata.type] {
                throw SchemaError("declares action type '\(metadata.type)' twice (action[\(earlier)] and action[\(index)])")
            }
            firstIndex[metadata.type] = index
            actions.append(metadata)
            entryPoints.append(functions)
        }
        return PluginImage(
            file: file,
            manifest: manifest,
            abiMajor: signature.abi_major,
            abiMinor: signature.abi_minor,
            isThreadSafe: fields.flags & BP_PLUGIN_THREAD_SAFE.rawValue != 0,
            actions: actions,
            functions: entryPoints.map {
                ActionFunctions(onEvent: $0.onEvent != nil, validateParams: $0.validateParams != nil, cleanup: $0.cleanup != nil)
            },
            entryPoints: PluginEntryPoints(initialize: fields.`init`, shutdown: fields.shutdown, actions: entryPoints)
        )
    }

    private static func check(_ signature: bp_build_signature) throws(SchemaError) {
        guard signature.magic == ABILayout.signatureMagic else {
            if signature.magic == ABILayout.signatureMagic.byteSwapped {
                throw SchemaError("build signature mismatch: the plugin was built for the other byte order")
            }
            throw SchemaError(
                "build signature magic is \(hex(signature.magic)), expected \(hex(ABILayout.signatureMagic)): not a BudPipeline descriptor"
            )
        }
        guard signature.abi_major == ABILayout.hostMajor else {
            throw SchemaError(
                "built for ABI major \(signature.abi_major); this host supports ABI major \(ABILayout.hostMajor)"
            )
        }
        guard signature.pointer_size == ABILayout.pointerSize else {
            throw SchemaError(
                "build signature mismatch: pointer_size is \(signature.pointer_size), the host's is \(ABILayout.pointerSize)"
            )
        }
        guard signature.byte_order == ABILayout.byteOrderMark else {
            throw SchemaError(
                "build signature mismatch: byte_order is \(hex(signature.byte_order)), the host's is \(hex(ABILayout.byteOrderMark))"
            )
        }
    }

    private static func action(
        at index: Int,
        of table: UnsafePointer<UnsafePointer<bp_action_v1>?>
    ) throws(SchemaError) -> (ActionMetadata, PluginEntryPoints.Action) {
        guard let pointer = table[index] else { throw SchemaError("action[\(index)] is NULL") }
        let declaredSize = Int(UnsafeRawPointer(pointer).load(as: UInt32.self))
        guard declaredSize >= ABILayout.actionMinimumSize else {
            throw SchemaError(
                "action[\(index)] struct_size \(declaredSize) is smaller than the ABI 1.0 minimum of \(ABILayout.actionMinimumSize) bytes"
            )
        }
        let fields = ABILayout.read(bp_action_v1.self, from: pointer, declaredSize: declaredSize)
        let document = try parse(fields.metadata_json, what: "action[\(index)] metadata")
        let metadata: ActionMetadata
        do {
            metadata = try ActionMetadata(json: document)
        } catch {
            let type = document["type"]?.stringValue.map { " ('\($0)')" } ?? ""
            throw SchemaError("action[\(index)]\(type) metadata: \(error.message)")
        }
        guard let execute = fields.execute else {
            throw SchemaError("action[\(index)] ('\(metadata.type)') has no execute function")
        }
        return (
            metadata,
            PluginEntryPoints.Action(
                context: fields.action_context,
                execute: execute,
                onEvent: fields.on_event,
                validateParams: fields.validate_params,
                cleanup: fields.cleanup
            )
        )
    }

    private static func parse(_ bytes: bp_bytes, what: String) throws(SchemaError) -> JSONValue {
        guard bytes.len > 0, bytes.ptr != nil else { throw SchemaError("\(what) is empty") }
        do {
            return try JSONValue(parsing: bytes.buffer)
        } catch {
            throw SchemaError("\(what) is not valid JSON: \(error)")
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
