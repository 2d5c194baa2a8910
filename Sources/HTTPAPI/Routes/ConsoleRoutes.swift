import Console
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /ui` and `/ui/<file>`: the web console, served from the binary (docs/console.md).
///
/// The page and its files load without the app token (they hold no data); everything the
/// console shows it fetches from the public API with the token the user enters. Each answer
/// carries a content security policy that allows only this server's own script, styles and
/// API, no inline script and no framing, so a label drawn from stored text cannot run as code
/// even if it reached the page as markup.
struct ConsoleRoutes: Sendable {
    static let securityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func page(_ request: Request, context: some RequestContext) throws -> Response {
        guard let page = ConsoleAssets.page else { throw APIError(.notFound, code: "ROUTE_NOT_FOUND", message: "Not Found") }
        return Self.response(page, request)
    }

    func asset(_ request: Request, context: some RequestContext) throws -> Response {
        let name = context.parameters.get("asset") ?? ""
        guard let asset = ConsoleAssets.all[name] else {
            throw APIError(.notFound, code: "FILE_NOT_FOUND", message: "The console has no file \(name.prefix(64))")
        }
        return Self.response(asset, request)
    }

    static func response(_ asset: ConsoleAssets.Asset, _ request: Request) -> Response {
        var headers = HTTPFields()
        headers[.eTag] = asset.etag
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("Content-Security-Policy")!] = securityPolicy
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        if request.headers[values: .ifNoneMatch].contains(where: {
            $0.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == asset.etag }
        }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        headers[.contentLength] = String(asset.bytes.count)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }
}
