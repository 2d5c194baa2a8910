/// The web console's files, compiled into the binary: the server needs no asset directory and
/// fetches nothing at run time (see docs/console.md).
public enum ConsoleAssets {
    public struct Asset: Sendable {
        public let name: String
        public let contentType: String
        public let bytes: [UInt8]
        /// A strong validator of the bytes (FNV-1a, hex), for `ETag` and `If-None-Match`.
        public let etag: String
    }

    /// Every file the console serves, by the name in its URL (`/ui/<name>`).
    public static let all: [String: Asset] = {
        let files: [(String, String, [UInt8])] = [
            ("index.html", "text/html; charset=utf-8", PackageResources.index_html),
            ("console.js", "text/javascript; charset=utf-8", PackageResources.console_js),
            ("console.css", "text/css; charset=utf-8", PackageResources.console_css),
            ("favicon.svg", "image/svg+xml", PackageResources.favicon_svg),
        ]
        var assets: [String: Asset] = [:]
        for (name, type, bytes) in files {
            assets[name] = Asset(name: name, contentType: type, bytes: bytes, etag: "\"\(fnv1a(bytes))\"")
        }
        return assets
    }()

    /// The page itself (what `/ui` and `/ui/` serve).
    public static var page: Asset? { all["index.html"] }

    static func fnv1a(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
