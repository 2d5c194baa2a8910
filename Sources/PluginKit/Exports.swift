// PluginKit is the one module a plugin author imports: it brings the JSON value type and the
// plugin document types (metadata, requests, outcomes) along.
@_exported import BudJSON
@_exported import PluginSchema
