public import BudJSON
public import Hummingbird
import NIOCore

/// A JSON body with a status, written with BudJSON (keys in the order they were built).
public struct JSONResponse: ResponseGenerator, Sendable {
    public var body: JSONValue
    public var status: HTTPResponse.Status

    public init(_ body: JSONValue, status: HTTPResponse.Status = .ok) {
        self.body = body
        self.status = status
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    func response() -> Response {
        let bytes = body.serialized()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(bytes.count)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// `204 No Content`: the answer to a delete, with no body.
struct NoContent: ResponseGenerator {
    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .noContent)
    }
}
