public import BudJSON

/// Who a plugin is: the manifest document of its descriptor.
public struct PluginManifest: Sendable, Equatable {
    /// Unique plugin name; also the key of its configuration. Letters, digits, `_`, `-` and `.`, at most 100.
    public var name: String
    /// Semantic version of the plugin.
    public var version: String
    public var description: String?

    public init(name: String, version: String, description: String? = nil) {
        self.name = name
        self.version = version
        self.description = description
    }

    /// Reads and validates a manifest document: `{"name": ..., "version": ..., "description": ...}`.
    public init(json: JSONValue) throws(SchemaError) {
        let reader = try ObjectReader(json, path: "manifest")
        self.init(
            name: try reader.requiredString("name"),
            version: try reader.requiredString("version"),
            description: try reader.string("description")
        )
        try validate()
    }

    /// Checks the name's alphabet and length.
    public func validate() throws(SchemaError) {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        guard !name.isEmpty, name.utf8.count <= 100, allowed else {
            throw SchemaError("manifest.name '\(name)' must be 1 to 100 letters, digits, '_', '-' or '.'")
        }
        if version.isEmpty { throw SchemaError("manifest.version is required") }
    }

    /// The manifest document.
    public var json: JSONValue {
        var object: JSONObject = ["name": .string(name), "version": .string(version)]
        object.setIfPresent("description", description.map(JSONValue.string))
        return .object(object)
    }
}
