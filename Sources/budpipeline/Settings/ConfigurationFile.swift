import ArgumentParser
import BudJSON
import Foundation
import PipelineEngine

/// A configuration file (`--config FILE` or `BUDPIPELINE_CONFIG`): YAML (or JSON) with a section
/// per part, each key one setting of ``SettingsCatalog``:
///
/// ```yaml
/// server:
///   port: 8010
/// database:
///   url: postgresql://budpipeline@db/budpipeline
///   pool_size: 20
/// plugins:
///   dirs: [/opt/budpipeline/plugins, /srv/plugins]
/// ```
///
/// The file lies under the environment: a variable that is set wins over the file's value, which
/// wins over the default. A key the catalog does not know, a value that is not a scalar (or, for a
/// list setting, a sequence of scalars), or a file that cannot be read is an error naming it —
/// nothing in a file is ignored. The values are then checked by the same code that reads the
/// environment, so a file and a variable are refused for the same reasons.
struct ConfigurationFile: Equatable {
    /// The file's path.
    let path: String
    /// The file's settings, as the environment would give them: variable → value.
    let values: [String: String]

    /// The largest file read.
    static let maximumBytes = 1 << 20

    /// Reads and checks the file at `path`.
    static func load(_ path: String) throws -> ConfigurationFile {
        // At most one byte more than the bound is read: a huge (or endless) file costs no memory.
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CLIError("cannot read the configuration file \(path)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maximumBytes + 1) ?? Data()
        } catch {
            throw CLIError("cannot read the configuration file \(path) (not a regular file?)")
        }
        guard data.count <= maximumBytes else {
            throw CLIError("\(path): the configuration file is larger than \(maximumBytes) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path): the configuration file is not UTF-8 text") }
        let document: JSONValue
        do {
            // JSON is read as YAML too, whose reader refuses a key given twice (the JSON reader
            // keeps the last, which would ignore the first silently).
            document = try PipelineDocument.read(text, format: .yaml)
        } catch {
            throw CLIError("\(path): \(error.message)")
        }
        return ConfigurationFile(path: path, values: try settings(in: document, path: path))
    }

    /// The settings of a parsed document: a mapping of sections, each a mapping of keys.
    static func settings(in document: JSONValue, path: String) throws -> [String: String] {
        guard case .object(let sections) = document else {
            if document == .null { return [:] }
            throw CLIError("\(path): the configuration file must be a mapping of sections (server:, database:, …)")
        }
        var values: [String: String] = [:]
        for (section, content) in sections {
            // A section whose settings are all commented out is empty, not an error.
            if content == .null { continue }
            guard case .object(let entries) = content else {
                throw CLIError("\(path): '\(section)' must be a section of settings (key: value lines under it)")
            }
            for (name, value) in entries {
                let key = "\(section).\(name)"
                guard let setting = SettingsCatalog.byKey[key] else {
                    throw CLIError("\(path): unknown setting '\(key)' (the settings are listed in docs/operations.md)")
                }
                guard let text = try Self.text(of: value, for: setting, path: path) else { continue }
                values[setting.variable] = text
            }
        }
        return values
    }

    /// The environment form of `value`; `nil` for a null (the setting keeps its default).
    private static func text(of value: JSONValue, for setting: Setting, path: String) throws -> String? {
        switch value {
        case .null: return nil
        case .array(let elements):
            guard let separator = setting.separator else {
                throw CLIError("\(path): '\(setting.key)' takes one value, not a list")
            }
            var parts: [String] = []
            for element in elements {
                guard let part = scalar(element), !part.contains(separator),
                    !part.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
                else {
                    throw CLIError(
                        "\(path): every element of '\(setting.key)' must be one value without '\(separator)' or control characters")
                }
                parts.append(part)
            }
            return parts.joined(separator: separator)
        default:
            guard let text = scalar(value) else {
                throw CLIError("\(path): '\(setting.key)' must be a single value (text, number or true/false)")
            }
            // The environment cannot hold a NUL (it would cut the value short: a token `ab\0cd`
            // would become `ab`), and no setting takes a line break or other control character.
            guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\t" }) else {
                throw CLIError("\(path): '\(setting.key)' holds a control character (a NUL or a line break)")
            }
            return text
        }
    }

    private static func scalar(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): number.isFinite ? String(number) : nil
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    /// Sets, in this process's environment, each of the file's settings that no variable sets
    /// already; children (plugin processes) inherit them. Run before anything reads a setting.
    /// A variable set to the empty string counts as unset, as everywhere settings are read.
    func apply() {
        for (variable, value) in values {
            if let current = getenv(variable), current.pointee != 0 { continue }
            setenv(variable, value, 1)
        }
    }
}

/// `--config FILE`: the configuration file to read settings from (else `BUDPIPELINE_CONFIG`).
struct ConfigurationOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: "A YAML configuration file, under the environment (default: BUDPIPELINE_CONFIG; see docs/operations.md).")
    var file: String?

    /// The file named by the option or `BUDPIPELINE_CONFIG`, if any.
    var path: String? {
        if let file { return file }
        if let named = ProcessInfo.processInfo.environment["BUDPIPELINE_CONFIG"], !named.isEmpty { return named }
        return nil
    }

    /// Reads the file, if one is named, and applies it under the environment; returns it.
    @discardableResult
    func apply() throws -> ConfigurationFile? {
        guard let path else { return nil }
        let file = try ConfigurationFile.load(path)
        file.apply()
        return file
    }
}
