public import PluginSchema

/// The actions pipelines may use, by type: built-in actions and those of loaded plugins.
public protocol ActionCatalog: Sendable {
    func metadata(for type: String) -> ActionMetadata?
}

/// A catalog of a fixed set of actions.
public struct StaticActionCatalog: ActionCatalog {
    private let actions: [String: ActionMetadata]

    public init(_ actions: [ActionMetadata]) {
        var byType: [String: ActionMetadata] = [:]
        for action in actions where byType[action.type] == nil { byType[action.type] = action }
        self.actions = byType
    }

    public func metadata(for type: String) -> ActionMetadata? {
        actions[type]
    }
}
