public import BudJSON
internal import CWorkMarks
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Work this process records before it does it, so that a process that dies in the middle leaves
/// a durable trace of what it was doing — and, for a fatal signal, of which work killed it.
///
/// Marks live in a file of this process's own, mapped shared into memory (see `work_marks.h`):
/// beginning and ending a unit of work are memory writes, and the kernel keeps the pages when the
/// process dies, however it dies. Processes sharing a database share a directory of mark files;
/// ``collectEnded(in:)`` reads and removes the files of processes that have ended. See
/// docs/operations.md, "Crash loops".
public enum WorkMarks {
    /// Opens this process's mark file, `<directory>/<worker>~<pid>-<random>.marks` (a file of its
    /// own even when a process restarts with the same worker id, so that it never takes over or
    /// replaces the file its dead predecessor left), and installs the fatal-signal handlers. Until
    /// it is called (or when it fails), marking does nothing.
    public static func open(directory: String, worker: String) throws(WorkMarksError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WorkMarksError("cannot create the work-mark directory \(directory): \(error.localizedDescription)")
        }
        let path = (directory as NSString).appendingPathComponent(fileName(worker))
        let status = bp_marks_open(path)
        guard status == 0 else { throw WorkMarksError("cannot open the work-mark file \(path): \(String(cString: strerror(status)))") }
        state.withLock { $0 = path }
    }

    /// Whether marks are recorded in this process.
    public static var isOpen: Bool { bp_marks_is_open() != 0 }

    /// Runs `body` with `mark` as the calling thread's current work (nothing is marked for `nil`).
    /// The mark is built only when marks are open. `body` must not suspend: a mark belongs to a
    /// thread.
    @inlinable
    public static func during<Result, Failure: Error>(
        _ mark: @autoclosure () -> WorkMark?, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let token = begin(mark)
        defer { end(token) }
        return try body()
    }

    /// Records `mark` as the calling thread's current work; returns the token for ``end(_:)``.
    @usableFromInline
    static func begin(_ mark: () -> WorkMark?) -> Int32 {
        guard bp_marks_is_open() != 0, let record = mark()?.record else { return -1 }
        return record.withUnsafeBufferPointer { bp_marks_begin($0.baseAddress, $0.count) }
    }

    @usableFromInline
    static func end(_ token: Int32) {
        bp_marks_end(token)
    }

    /// The process is stopping in order: none of the work still marked died with it. Frees every
    /// slot and removes the file (its mapping stays valid for threads still finishing).
    public static func closeCleanly() {
        bp_marks_clear_all()
        guard
            let path = state.withLock({ state -> String? in
                defer { state = nil }
                return state
            })
        else { return }
        unlink(path)
    }

    /// Reads the mark files of processes that have ended (their lock is free) in `directory`,
    /// removes them, and returns what each process was doing when it ended. The file of this
    /// process, and of processes still running, are left alone.
    public static func collectEnded(in directory: String) -> [EndedProcess] {
        let own = state.withLock { $0 }.map { ($0 as NSString).lastPathComponent }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var ended: [EndedProcess] = []
        for name in names.sorted() where name.hasSuffix(".marks") && name != own {
            let path = (directory as NSString).appendingPathComponent(name)
            let file = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard file >= 0 else { continue }
            defer { close(file) }
            guard flock(file, LOCK_EX | LOCK_NB) == 0, Self.isStillNamed(path, by: file) else { continue }
            let bytes = readAll(file)
            unlink(path)
            let worker = name.dropLast(".marks".count).split(separator: "~", maxSplits: 1).first.map(String.init) ?? ""
            ended.append(EndedProcess(worker: worker, marks: parse(bytes)))
        }
        return ended
    }

    /// Whether `path` still names the file open as `file`: another process that read and
    /// unlinked it first (they lock it in turn) leaves this one holding a file nobody names, whose
    /// marks were counted already.
    private static func isStillNamed(_ path: String, by file: Int32) -> Bool {
        var opened = stat()
        var named = stat()
        guard fstat(file, &opened) == 0, stat(path, &named) == 0 else { return false }
        return opened.st_dev == named.st_dev && opened.st_ino == named.st_ino
    }

    // MARK: File format

    private static let state = Mutex<String?>(nil)

    private static func fileName(_ worker: String) -> String {
        let safe = worker.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "_")
                ? Character(scalar) : "_"
        }
        let incarnation = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        return String(safe.prefix(200)) + "~" + incarnation + ".marks"
    }

    private static func readAll(_ file: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < Int(BP_MARKS_FILE_BYTES) {
            let count = chunk.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk.prefix(count))
        }
        return bytes
    }

    /// The marks still active or faulted in a file's bytes; anything malformed is skipped.
    static func parse(_ bytes: [UInt8]) -> [WorkMark] {
        let header = Int(BP_MARKS_HEADER_BYTES)
        let slotBytes = Int(BP_MARKS_SLOT_BYTES)
        guard bytes.count >= header, Array(bytes[0..<8]) == Array("BPMARKS1".utf8) else { return [] }
        var marks: [WorkMark] = []
        var offset = header
        while offset + slotBytes <= bytes.count {
            let state = word(bytes, offset)
            let signal = Int32(bitPattern: word(bytes, offset + 4))
            let length = Int(word(bytes, offset + 8))
            if state == UInt32(BP_MARK_ACTIVE) || state == UInt32(BP_MARK_FAULT), length <= Int(BP_MARKS_RECORD_BYTES),
                var mark = WorkMark(record: Array(bytes[(offset + 16)..<(offset + 16 + length)]))
            {
                mark.signal = state == UInt32(BP_MARK_FAULT) ? signal : nil
                marks.append(mark)
            }
            offset += slotBytes
        }
        return marks
    }

    private static func word(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}

/// One unit of work: what it was, for which execution and steps, through which plugin.
public struct WorkMark: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A plugin's `execute`, `on_event` or `cleanup` for a step.
        case execute, onEvent = "on_event", cleanup
        /// The runtime applying inputs to an execution (or reading it back from the store).
        case transition
    }

    public var kind: Kind
    public var executionID: String
    /// The steps the work was for (a transition may handle inputs of several).
    public var stepIDs: [String]
    public var plugin: String?
    public var action: String?
    /// The fatal signal the work died of; `nil` when it was only under way.
    public var signal: Int32?

    public init(kind: Kind, executionID: String, stepIDs: [String], plugin: String? = nil, action: String? = nil) {
        self.kind = kind
        self.executionID = executionID
        self.stepIDs = stepIDs
        self.plugin = plugin
        self.action = action
    }

    /// The record written into a slot: compact JSON, at most a slot's size (steps beyond what
    /// fits are left out).
    ///
    /// Written byte by byte (no intermediate JSON values): it is built before every plugin call and
    /// transition of a server.
    var record: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        func append(_ literal: StaticString) {
            literal.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }
        /// A JSON string of at most `limit` bytes of `text`, cut between characters.
        func appendString(_ text: String, limit: Int) {
            bytes.append(UInt8(ascii: "\""))
            var written = 0
            for scalar in text.unicodeScalars {
                let width = UTF8.width(scalar)
                guard written + width <= limit else { break }
                written += width
                switch scalar {
                case "\"", "\\":
                    bytes.append(UInt8(ascii: "\\"))
                    bytes.append(UInt8(scalar.value))
                case "\u{0}"..."\u{1F}": bytes.append(UInt8(ascii: " "))
                case _ where scalar.isASCII: bytes.append(UInt8(scalar.value))
                default: bytes.append(contentsOf: String(scalar).utf8)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
        append(#"{"kind":"#)
        appendString(kind.rawValue, limit: 20)
        append(#","execution_id":"#)
        appendString(executionID, limit: 100)
        if let plugin {
            append(#","plugin":"#)
            appendString(plugin, limit: 100)
        }
        if let action {
            append(#","action":"#)
            appendString(action, limit: 100)
        }
        append(#","step_ids":["#)
        var first = true
        for step in stepIDs where bytes.count + 2 * step.utf8.count + 8 < Int(BP_MARKS_RECORD_BYTES) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            appendString(step, limit: 255)
        }
        append("]}")
        return bytes
    }

    init?(record: [UInt8]) {
        guard let value = try? JSONValue(parsing: record), let kindName = value["kind"]?.stringValue,
            let kind = Kind(rawValue: kindName), let executionID = value["execution_id"]?.stringValue
        else { return nil }
        self.init(
            kind: kind, executionID: executionID, stepIDs: value["step_ids"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            plugin: value["plugin"]?.stringValue, action: value["action"]?.stringValue)
    }
}

/// What a process that has ended was doing.
public struct EndedProcess: Sendable, Equatable {
    public let worker: String
    /// Work under way when it ended, and the work that received a fatal signal.
    public let marks: [WorkMark]

    /// The work that killed the process, when a fatal signal named it.
    public var faulted: [WorkMark] { marks.filter { $0.signal != nil } }

    /// What one death of this process is charged to: the work the fatal signal named, else all
    /// the work under way — once per step, however many marks name it (a plugin call and the
    /// transition after it are one death), and once per execution whose marks name no step.
    /// Executions in the order their first mark appears; steps in the order they first appear.
    public var charges: [InterruptionCharge] {
        var charges: [InterruptionCharge] = []
        for mark in faulted.isEmpty ? marks : faulted {
            guard let index = charges.firstIndex(where: { $0.executionID == mark.executionID }) else {
                charges.append(InterruptionCharge(executionID: mark.executionID, stepIDs: Self.unique(mark.stepIDs), marks: [mark]))
                continue
            }
            charges[index].stepIDs = Self.unique(charges[index].stepIDs + mark.stepIDs)
            charges[index].marks.append(mark)
        }
        return charges
    }

    private static func unique(_ ids: [String]) -> [String] {
        var seen = Set<String>()
        return ids.filter { seen.insert($0).inserted }
    }
}

/// One death counted against an execution: against `stepIDs`, or the execution itself when none.
public struct InterruptionCharge: Sendable, Equatable {
    public let executionID: String
    public var stepIDs: [String]
    /// The marks it comes from.
    public var marks: [WorkMark]
}

public struct WorkMarksError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
