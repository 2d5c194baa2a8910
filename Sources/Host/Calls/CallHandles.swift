internal import Logging
import Synchronization

/// The `bp_call *` handles plugins receive: a slot number and a generation, never a pointer.
///
/// A plugin may keep a handle after its call has returned (a thread it started writes later). A
/// handle that pointed at the call object would then point at freed memory. Here a handle is
/// looked up in a fixed table: once its call has returned, the slot's generation has moved on and
/// the lookup finds nothing, so the late write is refused — and logged with the plugin's name —
/// instead of crashing the host.
final class CallHandles: Sendable {
    static let shared = CallHandles()

    /// How many calls can be under way at once (plugin threads are far fewer).
    static let capacity = 1 << 14

    private struct Slot {
        var generation: UInt64 = 0
        var call: PluginCall?
        /// The plugin whose call last used the slot, and whether a stale use was reported.
        var lastPlugin: PluginServices?
        var staleUseReported = false
    }

    /// The slots, in shards of 256 behind a lock each.
    private final class Shard: Sendable {
        let slots = Mutex([Slot](repeating: Slot(), count: shardSize))
    }

    private static let shardSize = 256
    private let shards: [Shard]
    private let cursor = Atomic<Int>(0)

    private init() {
        shards = (0..<(Self.capacity / Self.shardSize)).map { _ in Shard() }
    }

    /// Runs `body` on slot `index` under its shard's lock.
    private func withSlot<Result>(_ index: Int, _ body: (inout Slot) -> Result) -> Result {
        shards[index / Self.shardSize].slots.withLock { body(&$0[index % Self.shardSize]) }
    }

    /// Registers `call` and returns its handle; `nil` when every slot is taken.
    func register(_ call: PluginCall) -> OpaquePointer? {
        let start = cursor.add(1, ordering: .relaxed).oldValue
        for probe in 0..<Self.capacity {
            let index = (start &+ probe) & (Self.capacity - 1)
            let generation = withSlot(index) { slot -> UInt64? in
                guard slot.call == nil else { return nil }
                slot.generation &+= 1
                slot.call = call
                slot.lastPlugin = call.plugin
                slot.staleUseReported = false
                return slot.generation
            }
            if let generation { return Self.handle(index: index, generation: generation) }
        }
        return nil
    }

    /// Ends the handle: later uses find nothing.
    func unregister(_ handle: OpaquePointer) {
        guard let (index, generation) = Self.decode(handle) else { return }
        withSlot(index) { slot in
            if slot.generation == generation { slot.call = nil }
        }
    }

    /// The call a handle stands for while it is under way. For a stale handle, `nil` — and the
    /// first stale use of each handle is logged with the plugin's name.
    func resolve(_ handle: OpaquePointer?, service: String) -> PluginCall? {
        guard let handle, let (index, generation) = Self.decode(handle) else { return nil }
        let (call, stalePlugin) = withSlot(index) { slot -> (PluginCall?, PluginServices?) in
            if slot.generation == generation, let call = slot.call { return (call, nil) }
            guard slot.generation == generation, !slot.staleUseReported else { return (nil, nil) }
            slot.staleUseReported = true
            return (nil, slot.lastPlugin)
        }
        if let stalePlugin {
            stalePlugin.logger.warning(
                "a plugin used a call handle after its call had returned; the request was refused",
                metadata: ["plugin": "\(stalePlugin.name)", "service": "\(service)"])
        }
        return call
    }

    // MARK: Encoding

    /// `generation << 16 | index + 1`: never 0 (NULL), never a valid pointer a plugin could confuse.
    private static func handle(index: Int, generation: UInt64) -> OpaquePointer? {
        OpaquePointer(bitPattern: UInt((generation & 0xFFFF_FFFF) << 16 | UInt64(index + 1)))
    }

    private static func decode(_ handle: OpaquePointer) -> (index: Int, generation: UInt64)? {
        let bits = UInt64(UInt(bitPattern: handle))
        let index = Int(bits & 0xFFFF) - 1
        guard index >= 0, index < capacity else { return nil }
        return (index, bits >> 16)
    }
}
