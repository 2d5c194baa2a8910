import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Free space on the file systems the process writes to, for the probes.
public struct DiskSpace: Sendable, Equatable {
    /// The folder looked at.
    public var path: String
    public var freeBytes: UInt64
    public var totalBytes: UInt64

    /// Below this much free space a file system counts as low: writes will soon fail.
    public static let lowBytes: UInt64 = 256 * 1024 * 1024

    /// Whether the free space is below ``lowBytes`` (or below 2 % of a file system smaller than
    /// 12.5 GiB, so that a small test volume is not always low).
    public var isLow: Bool { freeBytes < min(Self.lowBytes, totalBytes / 50) }

    /// The space of each path's file system; a path that does not exist yet is looked at through
    /// its nearest existing parent, and one that cannot be read at all is left out.
    public static func measure(_ paths: [String]) -> [DiskSpace] {
        var seen = Set<String>()
        return paths.compactMap { path -> DiskSpace? in
            guard seen.insert(path).inserted else { return nil }
            var folder = path.isEmpty ? "." : path
            for _ in 0..<64 where !FileManager.default.fileExists(atPath: folder) {
                let parent = (folder as NSString).deletingLastPathComponent
                folder = parent.isEmpty ? "." : parent
            }
            var info = statvfs()
            guard statvfs(folder, &info) == 0 else { return nil }
            let block = UInt64(info.f_frsize)
            let (free, freeOverflow) = UInt64(info.f_bavail).multipliedReportingOverflow(by: block)
            let (total, totalOverflow) = UInt64(info.f_blocks).multipliedReportingOverflow(by: block)
            return DiskSpace(
                path: path, freeBytes: freeOverflow ? UInt64.max : free, totalBytes: totalOverflow ? UInt64.max : total)
        }
    }
}
