import BudServices
import Testing

/// Values the domain plugins put into bud service paths stay one segment each.
@Suite("Service paths")
struct ServicePathTests {
    @Test(
        "a value is percent-encoded as exactly one segment",
        arguments: [
            ("0d2a-uuid_1.x~", "0d2a-uuid_1.x~"),
            ("../../../../secrets/kubernetes/db-password?x=", "..%2F..%2F..%2F..%2Fsecrets%2Fkubernetes%2Fdb-password%3Fx%3D"),
            ("../../state/statestore/key", "..%2F..%2Fstate%2Fstatestore%2Fkey"), ("%2e%2e", "%252e%252e"),
            ("%2E%2E%2F", "%252E%252E%252F"),
            ("..%2f", "..%252f"), ("%252e", "%25252e"), ("a?b=1", "a%3Fb%3D1"), ("a#b", "a%23b"), ("a\\..\\b", "a%5C..%5Cb"),
            ("http://evil.example/x", "http%3A%2F%2Fevil.example%2Fx"), ("a\u{0}b\r\n", "a%00b%0D%0A"), ("a b+c", "a%20b%2Bc"),
            ("é", "%C3%A9"), ("...", "..."), ("..a", "..a"),
        ])
    func valuesAreOneSegment(value: String, encoded: String) throws {
        let path = ServicePath("cluster", .value(value, name: "cluster_id"), "health")
        let built = try path.encoded()
        #expect(built == "cluster/\(encoded)/health")
        #expect(built.split(separator: "/", omittingEmptySubsequences: false).count == 3, "still three segments: \(built)")
        #expect(!built.contains("?") && !built.contains("#") && !built.contains("\\"))
    }

    @Test("an empty, '.' or '..' value is refused, naming the value", arguments: ["", ".", ".."])
    func dotAndEmptyValuesAreRefused(value: String) {
        let path = ServicePath("models", .value(value, name: "model_id"))
        do {
            let built = try path.encoded()
            Issue.record("\(value.debugDescription) was sent as \(built)")
        } catch {
            #expect(error == ServicePathError(name: "model_id", value: value))
            #expect(error.description.hasPrefix("model_id "))
            #expect(value.isEmpty ? error.description.contains("is empty") : error.description.contains("'.' and '..' are refused"))
        }
    }

    @Test("literal paths are taken as written; descriptions show values by name only")
    func literalsAndDescriptions() throws {
        let literal: ServicePath = "models/deploy-workflow"
        #expect(try literal.encoded() == "models/deploy-workflow")
        let path = ServicePath("endpoints", .value("e/1", name: "endpoint_id"), "autoscale")
        #expect(try path.encoded() == "endpoints/e%2F1/autoscale")
        #expect(path.description == "endpoints/{endpoint_id}/autoscale")
    }
}
