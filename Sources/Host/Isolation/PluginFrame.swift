import BudJSON

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One message between the server and a plugin process (see docs/plugins.md, "Isolation").
///
/// On the wire: a 4-byte little-endian length of the rest, then the kind (1 byte), the id
/// (8 bytes, little-endian), the header's length (4 bytes) and the header — a small JSON object —
/// and last the blob: request or result bytes carried as they are, never re-encoded.
///
/// The server reads what a plugin process writes as hostile input: a frame longer than
/// ``maximumLength``, a header that is not a JSON object, or a kind the reader does not know ends
/// the connection (and the process), never the server.
struct PluginFrame: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        // Server → plugin process.
        /// The plugin's configuration and the host's settings; answered by `ready` or `refused`.
        case configure = 1
        /// One plugin function call; answered by `result`.
        case call = 2
        /// Stop the running call with this id early (`is_cancelled` answers 1).
        case cancel = 3
        /// The answer to a `serviceRequest`.
        case serviceReply = 4
        /// Call the plugin's `shutdown` and exit.
        case shutdown = 5

        // Plugin process → server.
        /// The library opened: its manifest, ABI version and actions.
        case opened = 10
        /// `init` succeeded: calls may start.
        case ready = 11
        /// The library could not be opened or initialised; the header's `reason` says why.
        case refused = 12
        /// What a call returned.
        case result = 13
        /// A log line the plugin wrote during a call.
        case log = 14
        /// A progress report of an `execute` call.
        case progress = 15
        /// `invoke_service`: the server carries the call out and answers with `serviceReply`.
        case serviceRequest = 16
    }

    var kind: Kind
    var id: UInt64
    var header: JSONObject
    var blob: [UInt8]

    init(_ kind: Kind, id: UInt64 = 0, header: JSONObject = [:], blob: [UInt8] = []) {
        self.kind = kind
        self.id = id
        self.header = header
        self.blob = blob
    }

    /// The longest frame accepted: a result of the largest output the host allows, with room for
    /// its header.
    static let maximumLength = (16 << 20) + (1 << 20)

    /// The frame as bytes to write.
    func encoded() -> [UInt8] {
        let headerBytes = JSONValue.object(header).serialized()
        let length = 1 + 8 + 4 + headerBytes.count + blob.count
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + length)
        Self.append(UInt32(truncatingIfNeeded: length), to: &bytes)
        bytes.append(kind.rawValue)
        Self.append(id, to: &bytes)
        Self.append(UInt32(truncatingIfNeeded: headerBytes.count), to: &bytes)
        bytes.append(contentsOf: headerBytes)
        bytes.append(contentsOf: blob)
        return bytes
    }

    /// Reads a frame's body (everything after its length); throws on anything malformed.
    init(body: [UInt8]) throws(PluginFrameError) {
        guard body.count >= 13 else { throw PluginFrameError("a frame of \(body.count) bytes is too short") }
        guard let kind = Kind(rawValue: body[0]) else { throw PluginFrameError("unknown frame kind \(body[0])") }
        let id = Self.read(UInt64.self, from: body, at: 1)
        let headerLength = Int(Self.read(UInt32.self, from: body, at: 9))
        guard headerLength <= body.count - 13 else { throw PluginFrameError("a frame header runs past the frame") }
        let header: JSONObject
        if headerLength == 0 {
            header = [:]
        } else {
            guard let parsed = try? JSONValue(parsing: Array(body[13..<(13 + headerLength)])), case .object(let object) = parsed else {
                throw PluginFrameError("a frame header is not a JSON object")
            }
            header = object
        }
        self.init(kind, id: id, header: header, blob: Array(body[(13 + headerLength)...]))
    }

    private static func append<Integer: FixedWidthInteger>(_ value: Integer, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func read<Integer: FixedWidthInteger>(_: Integer.Type, from bytes: [UInt8], at offset: Int) -> Integer {
        var value = Integer.zero
        for index in 0..<MemoryLayout<Integer>.size {
            value |= Integer(bytes[offset + index]) << (8 * index)
        }
        return value
    }
}

/// A frame that could not be read or written; the connection is unusable afterwards.
struct PluginFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// One end of the socket between the server and a plugin process. Reads block the calling
/// thread (a dedicated reader thread, never an event loop); writes are serialised by the caller.
struct PluginChannel: Sendable {
    let descriptor: Int32

    /// Writes the whole frame, retrying short writes and interruptions.
    func write(_ frame: PluginFrame) throws(PluginFrameError) {
        let bytes = frame.encoded()
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                send(descriptor, buffer.baseAddress! + written, buffer.count - written, Int32(MSG_NOSIGNAL))
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw PluginFrameError("writing to the plugin channel failed: errno \(errno)")
            }
            written += count
        }
    }

    /// Reads the next frame; `nil` when the other end closed the channel between frames.
    func read() throws(PluginFrameError) -> PluginFrame? {
        var lengthBytes = [UInt8](repeating: 0, count: 4)
        guard try fill(&lengthBytes, allowingEnd: true) else { return nil }
        let length = Int(UInt32(lengthBytes[0]) | UInt32(lengthBytes[1]) << 8 | UInt32(lengthBytes[2]) << 16 | UInt32(lengthBytes[3]) << 24)
        guard length <= PluginFrame.maximumLength else {
            throw PluginFrameError("a frame of \(length) bytes is longer than the limit of \(PluginFrame.maximumLength)")
        }
        var body = [UInt8](repeating: 0, count: length)
        _ = try fill(&body, allowingEnd: false)
        return try PluginFrame(body: body)
    }

    /// Fills `buffer` completely; `false` when the channel ended before its first byte and
    /// `allowingEnd` says that is a clean end.
    private func fill(_ buffer: inout [UInt8], allowingEnd: Bool) throws(PluginFrameError) -> Bool {
        var filled = 0
        while filled < buffer.count {
            let count = buffer.withUnsafeMutableBytes { raw in
                recv(descriptor, raw.baseAddress! + filled, raw.count - filled, 0)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw PluginFrameError("reading from the plugin channel failed: errno \(errno)")
            }
            if count == 0 {
                if filled == 0 && allowingEnd { return false }
                throw PluginFrameError("the plugin channel ended in the middle of a frame")
            }
            filled += count
        }
        return true
    }

    func close() {
        _ = Glibc.close(descriptor)
    }
}
