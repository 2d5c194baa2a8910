import BudJSON
import Synchronization

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

    /// Reads a frame's body (everything after its length); throws on anything malformed,
    /// including a header longer than `headerLimits` allows for its kind (checked before it is
    /// parsed, so that an oversized header costs no parsing).
    init(body: [UInt8], headerLimits: HeaderLimits = .none) throws(PluginFrameError) {
        guard body.count >= 13 else { throw PluginFrameError("a frame of \(body.count) bytes is too short") }
        guard let kind = Kind(rawValue: body[0]) else { throw PluginFrameError("unknown frame kind \(body[0])") }
        let id = Self.read(UInt64.self, from: body, at: 1)
        let headerLength = Int(Self.read(UInt32.self, from: body, at: 9))
        guard headerLength <= body.count - 13 else { throw PluginFrameError("a frame header runs past the frame") }
        let limit = headerLimits.maximumBytes(of: kind)
        guard headerLength <= limit else {
            throw PluginFrameError("a \(kind) frame with a header of \(headerLength) bytes, more than the \(limit) allowed")
        }
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

extension PluginFrame {
    /// The longest header the server reads for each kind of frame. Log lines, progress reports
    /// and service requests carry a few short strings (a service request's body is in the blob);
    /// results and refusals carry an error message; only `opened` carries much (the actions'
    /// metadata), once per start.
    struct HeaderLimits: Sendable {
        var small: Int
        var messages: Int

        /// No limit but the frame's own.
        static let none = HeaderLimits(small: .max, messages: .max)

        /// Limits that fit the host's own: room for a log line, or an error, of the longest length
        /// allowed, even with every byte escaped in JSON (6 bytes for one).
        init(logLineBytes: Int, errorBytes: Int) {
            self.init(small: 6 * logLineBytes + (64 << 10), messages: 6 * errorBytes + (64 << 10))
        }

        init(small: Int, messages: Int) {
            self.small = small
            self.messages = messages
        }

        func maximumBytes(of kind: Kind) -> Int {
            switch kind {
            case .log, .progress, .serviceRequest, .ready, .cancel, .shutdown, .serviceReply: small
            case .result, .refused: messages
            case .opened, .configure, .call: .max
            }
        }
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

    /// Writes the whole frame, retrying short writes and interruptions. With `waitingAtMost`, a
    /// write that finds the socket full waits at most that long for room, then fails (the channel
    /// is unusable then: part of the frame may be written); without, it blocks until done.
    func write(_ frame: PluginFrame, waitingAtMost: Duration? = nil) throws(PluginFrameError) {
        let bytes = frame.encoded()
        let deadline = waitingAtMost.map { ContinuousClock.now + $0 }
        let flags = Int32(MSG_NOSIGNAL) | (deadline == nil ? 0 : Int32(MSG_DONTWAIT))
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return send(descriptor, base + written, buffer.count - written, flags)
            }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK, let deadline {
                    try waitForRoom(until: deadline)
                    continue
                }
                throw PluginFrameError("writing to the plugin channel failed: errno \(errno)")
            }
            written += count
        }
    }

    private func waitForRoom(until deadline: ContinuousClock.Instant) throws(PluginFrameError) {
        let left = deadline - ContinuousClock.now
        let milliseconds = max(0, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
        var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        guard milliseconds > 0, poll(&poller, 1, Int32(clamping: milliseconds)) > 0 else {
            throw PluginFrameError("the plugin process does not read its channel")
        }
    }

    /// Reads the next frame; `nil` when the other end closed the channel between frames.
    func read(headerLimits: PluginFrame.HeaderLimits = .none) throws(PluginFrameError) -> PluginFrame? {
        var lengthBytes = [UInt8](repeating: 0, count: 4)
        guard try fill(&lengthBytes, allowingEnd: true) else { return nil }
        let length = Int(UInt32(lengthBytes[0]) | UInt32(lengthBytes[1]) << 8 | UInt32(lengthBytes[2]) << 16 | UInt32(lengthBytes[3]) << 24)
        guard length <= PluginFrame.maximumLength else {
            throw PluginFrameError("a frame of \(length) bytes is longer than the limit of \(PluginFrame.maximumLength)")
        }
        var body = [UInt8](repeating: 0, count: length)
        _ = try fill(&body, allowingEnd: false)
        return try PluginFrame(body: body, headerLimits: headerLimits)
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

/// The server's end of a plugin process's socket, safe to use from several threads while the
/// process that owns it ends.
///
/// A descriptor number is reused by the system as soon as it is closed; a thread that still
/// held the number would then read or write some other file. So only ``close()`` closes, once:
/// it first shuts the socket down, which wakes every thread blocked on it (their reads end, their
/// writes fail), then waits for the reader and the writer to leave and marks the channel closed,
/// so that no later read or write reaches the number.
final class ServerChannel: Sendable {
    private let channel: PluginChannel
    /// Whether the channel is closed, guarded separately for the one reader and the writers, so
    /// that a blocked read never holds up a write (a cancellation on the control channel).
    private let reading = Mutex(false)
    private let writing = Mutex(false)
    private let closing = Mutex(false)

    init(descriptor: Int32) {
        channel = PluginChannel(descriptor: descriptor)
    }

    /// Reads the next frame; `nil` at the end of the channel, or once it is closed.
    func read(headerLimits: PluginFrame.HeaderLimits) throws(PluginFrameError) -> PluginFrame? {
        try reading.withLock { closed throws(PluginFrameError) -> PluginFrame? in
            closed ? nil : try channel.read(headerLimits: headerLimits)
        }
    }

    /// Writes a frame; see ``PluginChannel/write(_:waitingAtMost:)``. Only the call channel's
    /// own thread writes without a bound: every other writer runs where it must not block.
    func write(_ frame: PluginFrame, waitingAtMost: Duration? = nil) throws(PluginFrameError) {
        try writing.withLock { closed throws(PluginFrameError) in
            guard !closed else { throw PluginFrameError("the plugin channel is closed") }
            try channel.write(frame, waitingAtMost: waitingAtMost)
        }
    }

    /// Whether the process wrote something that nobody asked for yet (checked between calls).
    var hasUnreadInput: Bool {
        reading.withLock { closed in
            guard !closed else { return false }
            var byte: UInt8 = 0
            return recv(channel.descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
        }
    }

    /// Wakes the threads blocked on the channel and closes it for good; later calls do nothing.
    func close() {
        let first = closing.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        // The number is still ours here: only this call closes it, and only after the shutdown.
        _ = Glibc.shutdown(channel.descriptor, Int32(SHUT_RDWR))
        reading.withLock { $0 = true }
        writing.withLock { $0 = true }
        channel.close()
    }
}
