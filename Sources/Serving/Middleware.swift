import Datasets
import Foundation
import Hummingbird
import Tracking

/// Counts every request by method, matched route and status, and times it.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response
    {
        let start = ContinuousClock.now
        let response: Response
        do { response = try await next(request, context) } catch {
            record(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, start)
            throw error
        }
        record(request, context, status: response.status.code, start)
        return response
    }

    private func record(_ request: Request, _ context: Context, status: Int, _ start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        // NOTE: unmatched paths share one label, or a scanner would create a series per URL.
        metrics.recordRequest(
            method: request.method.rawValue, route: context.endpointPath ?? "unmatched",
            status: status, seconds: seconds)
    }
}

/// Turns every error into a JSON body `{"error": message}` with a fitting status, so that no
/// request, however malformed, ends without an answer.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response
    {
        do { return try await next(request, context) } catch {
            let (status, message) = statusAndMessage(error)
            var response = try json(["error": message], status: HTTPResponse.Status(code: status))
            if status == 503 { response.headers[.retryAfter] = "1" }
            if status == 401 { response.headers[.wwwAuthenticate] = "Bearer" }
            return response
        }
    }
}

/// The HTTP status and message an error maps to.
func statusAndMessage(_ error: any Error) -> (Int, String) {
    switch error {
    case let error as ServingError: return (error.status, error.message)
    case let error as HTTPError: return (error.status.code, error.body ?? error.status.reasonPhrase)
    case let error as DatasetError:
        switch error {
        case .imageTooLarge: return (413, error.description)
        case .notAnImage: return (415, "\(error.description) (send a PNG, JPEG or DICOM file)")
        default: return (400, error.description)
        }
    case let error as TrackingError:
        switch error {
        case .unknownModel, .unknownAlias, .unknownRun: return (404, error.description)
        default: return (500, error.description)
        }
    case let error as any HTTPResponseError: return (error.status.code, error.status.reasonPhrase)
    default: return (500, "internal error: \(error)")
    }
}

/// Admits a request only with `Authorization: Bearer <token>`; with no token configured, the
/// routes behind it are off (403).
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response
    {
        guard let token else { throw ServingError(status: 403, "admin routes are off: start the server with --admin-token") }
        let given = request.headers[.authorization] ?? ""
        guard given.hasPrefix("Bearer "), constantTimeEqual(Array(given.utf8.dropFirst(7)), Array(token.utf8)) else {
            throw ServingError(status: 401, "admin routes need 'Authorization: Bearer <token>'")
        }
        return try await next(request, context)
    }
}

/// Compares without an early exit, so response time does not reveal how much of a token matched.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
}
