internal import PluginABI

/// What this host knows about the ABI 1.0 layout: the smallest `struct_size` it accepts for each
/// struct (the end of its last 1.0 field) and its own build signature.
enum ABILayout {
    static let hostMajor = BP_ABI_MAJOR
    static let hostMinor = BP_ABI_MINOR
    static let signatureMagic = BP_SIGNATURE_MAGIC
    static let byteOrderMark = BP_BYTE_ORDER_MARK
    static let pointerSize = UInt32(MemoryLayout<UnsafeRawPointer>.size)

    /// Bytes a descriptor needs before its build signature can be read.
    static let signatureEnd = MemoryLayout<bp_plugin_descriptor_v1>.offset(of: \.signature)! + MemoryLayout<bp_build_signature>.size

    static let descriptorMinimumSize = end(of: \bp_plugin_descriptor_v1.shutdown)
    static let actionMinimumSize = end(of: \bp_action_v1.cleanup)
    static let progressMinimumSize = end(of: \bp_progress.message)
    static let serviceRequestMinimumSize = end(of: \bp_service_request.body)
    static let serviceResponseMinimumSize = end(of: \bp_service_response.body)

    private static func end<Root, Field>(of field: KeyPath<Root, Field>) -> Int {
        MemoryLayout<Root>.offset(of: field)! + MemoryLayout<Field>.size
    }

    /// Reads a struct the other side filled, honouring its `struct_size`: bytes beyond it read as zero.
    static func read<T>(_ type: T.Type, from pointer: UnsafeRawPointer, declaredSize: Int) -> T {
        let size = MemoryLayout<T>.size
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<T>.alignment)
        defer { scratch.deallocate() }
        scratch.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        scratch.copyMemory(from: pointer, byteCount: min(size, max(0, declaredSize)))
        return scratch.load(as: T.self)
    }
}

extension bp_bytes {
    /// The bytes as a buffer; empty when `ptr` is NULL.
    var buffer: UnsafeRawBufferPointer {
        guard let ptr, len > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: ptr, count: len)
    }

    /// The bytes as text; invalid UTF-8 is replaced by U+FFFD.
    var text: String {
        String(decoding: buffer, as: UTF8.self)
    }

    /// The bytes as text when they are valid UTF-8.
    var validatedText: String? {
        String(validating: buffer, as: UTF8.self)
    }
}
