/// A `WHERE` clause built from optional filters, each comparing a column with a bound parameter.
struct SQLConditions {
    private var clauses: [String] = []
    private(set) var binds: [SQLValue] = []

    /// Adds `comparison $n` for `value`, e.g. `add("created_at >=", .date(from))`.
    mutating func add(_ comparison: String, _ value: SQLValue) {
        binds.append(value)
        clauses.append("\(comparison) $\(binds.count)")
    }

    /// `WHERE a AND b`, or nothing when no filter applies.
    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}
