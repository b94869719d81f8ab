import Datasets
import Foundation
import Hummingbird
import Tracking

/// The server: the routes of `buildRouter` on HTTP/1.1 at `host:port`, each connection behind a
/// `ConnectionGuard` (header deadline, JSON answers to malformed HTTP).
///
/// `onServerRunning` receives the bound port (useful with port 0); `eventLoopGroup` is NIO's
/// shared one unless given.
public func buildApplication(
    state: ServingState, host: String = "127.0.0.1", port: Int = 8080,
    eventLoopGroup: EventLoopGroupProvider = .singleton,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let limits = state.limits
    let headerBytes = ConnectionGuard.maxHeaderBytes
    return Application(
        router: buildRouter(state: state),
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [ConnectionGuard(headerTimeout: limits.headerTimeout)],
                idleTimeout: .seconds(max(1, limits.idleTimeout.components.seconds)),
                httpDecoderConfiguration: .init(maxHeaderFieldSize: headerBytes, maxHeaderListSize: headerBytes))),
        // NOTE: a listen backlog of 4096 (Linux's default somaxconn) rather than 256: when many
        // connections arrive at once (a thousand idle ones cut at their deadline reconnecting),
        // a full backlog drops SYNs, and the client, a health probe among them, retries after 1 s.
        configuration: .init(address: .hostname(host, port: port), serverName: "medsynth", backlog: 4096),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
        eventLoopGroupProvider: eventLoopGroup)
}

/// The routes (Open Inference Protocol v2 with binary tensor data, image prediction, metrics, monitor, admin, web page)
/// behind the metrics and JSON-error middleware.
///
/// NOTE: no handler blocks: bodies are awaited, and decoding and inference run on the state's
/// inference threads, so health checks and metrics answer at once under any load.
public func buildRouter(state: ServingState) -> Router<BasicRequestContext> {
    let router = Router()
    // Outermost first: metrics see the final status of every request, errors included.
    router.add(middleware: MetricsMiddleware(metrics: state.metrics))
    router.add(middleware: JSONErrorMiddleware())

    router.get("/") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: webPage(modelName: state.modelName))))
    }
    addHealthRoutes(to: router, state: state)
    router.get("/v2") { _, _ in try json(ServerMetadata.medsynth) }
    // Each model route twice: unversioned, and for the served version only (another is 404).
    for model in ["/v2/models/:name", "/v2/models/:name/versions/:version"] {
        router.get(RouterPath(model)) { _, context in
            try json(ModelMetadata(of: try requestedDeployment(context, state: state).model))
        }
        router.get(RouterPath("\(model)/ready")) { _, context in
            _ = try requestedDeployment(context, state: state)
            return try json(["ready": true])
        }
        router.post(RouterPath("\(model)/infer")) { request, context in
            try await infer(request, deployment: try requestedDeployment(context, state: state), state: state)
        }
    }
    router.post("/v1/models/:name/predict") { request, context in
        let deployment = try state.deployment(named: context.parameters.require("name"))
        let model = deployment.model
        try refuseDeclaredOversize(request, state: state)
        let row = try await state.withInferenceSlot {
            let body = try await collectBody(request, state: state)
            return try await state.predict(deployment) {
                ((), try imagePixels(Array(body.readableBytesView), for: model, maxPixels: state.limits.maxImagePixels), 1)
            }.1[0]
        }
        let best = row.indices.max { row[$0] < row[$1] } ?? 0
        return try json(
            PredictResponse(
                probabilities: Dictionary(uniqueKeysWithValues: zip(model.classNames, row.map(Double.init))),
                predicted: model.classNames[best], model: model.name, version: model.version))
    }
    router.get("/v1/monitor") { _, _ in
        let deployment = try state.servedDeployment()
        return try json(
            MonitorResponse(
                model: deployment.model.name, version: deployment.model.version,
                drift: deployment.monitor?.report(), retrain: state.retrain?.status))
    }

    let admin = router.group("admin").add(middleware: BearerTokenMiddleware(token: state.adminToken))
    admin.post("reload") { request, _ in
        let body = try await collectBody(request, state: state)
        let reference = body.readableBytes == 0 ? nil : try decode(ReloadRequest.self, body).model
        let version = try await state.reload(reference)
        return try json(["name": version.name, "version": "\(version.version)"])
    }
    admin.post("alias") { request, _ in
        let body = try decode(AliasRequest.self, try await collectBody(request, state: state))
        guard let alias = ModelAlias(rawValue: body.alias) else {
            throw ServingError.badRequest("alias '\(body.alias)' is not one of champion, challenger")
        }
        try state.store.setAlias(alias, name: body.name, version: body.version)
        return try json(["name": body.name, "alias": alias.rawValue, "version": "\(body.version)"])
    }
    return router
}

/// `/v2/health/live`, `/v2/health/ready` and `/metrics`: on the service port, and on the health
/// port when there is one.
func addHealthRoutes(to router: Router<BasicRequestContext>, state: ServingState) {
    router.get("/v2/health/live") { _, _ in try json(["live": true]) }
    router.get("/v2/health/ready") { _, _ in try readiness(state.modelStatus) }
    router.get("/metrics") { _, _ in
        let deployment = state.deployment
        let text = state.metrics.render(
            model: deployment?.model, drift: deployment?.monitor?.report(), inFlight: state.inFlight,
            waiting: state.queue.waiting)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The deployment a `/v2/models/{name}[/versions/{version}]` route names: 404 for another model
/// or another version than the one served, 503 while none is loaded.
func requestedDeployment(_ context: BasicRequestContext, state: ServingState) throws -> Deployment {
    let deployment = try state.deployment(named: context.parameters.require("name"))
    if let version = context.parameters.get("version"), version != "\(deployment.model.version)" {
        throw ServingError(
            status: 404,
            "model '\(deployment.model.name)' has no version '\(version)' here; this server serves version "
                + "\(deployment.model.version)")
    }
    return deployment
}

/// `POST .../infer`: the body (JSON, or JSON and binary tensor data), checked and run on an
/// inference thread; the answer in JSON, or with binary outputs after the JSON.
func infer(_ request: Request, deployment: Deployment, state: ServingState) async throws -> Response {
    try refuseDeclaredOversize(request, state: state)
    let headerLength = request.headers[inferenceHeaderContentLength]
    // Admitted before the body is read: at most --max-concurrent bodies are held, and
    // decoding them (several times the body in memory and CPU) waits for an inference thread.
    let ((inferRequest, plan), rows) = try await state.withInferenceSlot {
        let body = try await collectBody(request, state: state)
        return try await state.predict(deployment) {
            let (jsonPart, binaryPart) = try splitInferBody(Array(body.readableBytesView), headerLength: headerLength)
            let inferRequest = try InferRequest.decode(jsonPart)
            let plan = try inferRequest.outputPlan()
            let (pixels, count) = try inferRequest.images(
                for: deployment.model, maxBatch: state.limits.maxBatch, binary: binaryPart)
            return ((inferRequest, plan), pixels, count)
        }
    }
    let (answer, binary) = inferAnswer(model: deployment.model, id: inferRequest.id, rows: rows, plan: plan)
    guard !binary.isEmpty else { return try json(answer) }
    let header = try jsonEncoder().encode(answer)
    var buffer = ByteBuffer()
    buffer.reserveCapacity(header.count + binary.count)
    buffer.writeBytes(header)
    buffer.writeBytes(binary)
    return Response(
        status: .ok,
        headers: [.contentType: "application/octet-stream", inferenceHeaderContentLength: "\(header.count)"],
        body: .init(byteBuffer: buffer))
}

/// The binary tensor data extension's header: the byte length of the body's JSON part.
let inferenceHeaderContentLength = HTTPFields.Element.Name("Inference-Header-Content-Length")!  // HTTPField.Name

/// `GET /v2/health/ready`: 200 `{"ready": true}` once a model is loaded; 503 with `ready: false`
/// and the reason while loading or after a failed load.
///
/// NOTE: the protocol says only "non-200" for not ready; 503 is what load balancers and
/// Kubernetes probes read as "do not send traffic here yet".
func readiness(_ status: ModelStatus) throws -> Response {
    struct Readiness: Encodable { var ready: Bool; var state: String; var error: String? }
    switch status {
    case .ready: return try json(Readiness(ready: true, state: "ready"))
    case .loading: return try json(Readiness(ready: false, state: "loading"), status: .serviceUnavailable)
    case .failed(let message):
        return try json(Readiness(ready: false, state: "failed", error: message), status: .serviceUnavailable)
    }
}

/// `POST /v1/models/{name}/predict` answer.
public struct PredictResponse: Codable, Sendable {
    /// Probability of each class, by name.
    public var probabilities: [String: Double]
    /// The most probable class.
    public var predicted: String
    /// Model name.
    public var model: String
    /// Model version that answered.
    public var version: Int
}

/// `GET /v1/monitor` answer.
public struct MonitorResponse: Codable, Sendable {
    /// Model name.
    public var model: String
    /// Model version that answered.
    public var version: Int
    /// Nil when the served version has no reference statistics.
    public var drift: DriftReport?
    /// Nil when the server has no retraining command.
    public var retrain: RetrainStatus?
}

struct ReloadRequest: Codable { var model: String? }
struct AliasRequest: Codable { var name: String; var version: Int; var alias: String }

/// Decodes a PNG, JPEG or DICOM body and resizes it to the model's (C, H, W), values in [0, 1].
///
/// Any size from 1x1 up to `maxPixels` is accepted (tiny images are upsampled, which the drift
/// monitor will notice if it happens often); larger headers are refused before decoding. A DICOM
/// body (told by "DICM" at offset 128) goes through the same bounded reader as a DICOM file in a
/// dataset (`readDICOM`: Rows x Columns checked before decompressing, a deflated dataset's
/// inflated size before inflating it) and is windowed to 8 bits as the data loader does, so a
/// model trained on DICOM files sees the same pixels at serving time.
func imagePixels(_ bytes: [UInt8], for model: any InferenceModel, maxPixels: Int) throws -> [Float] {
    let image = try decodeImage(bytes, path: "request body", maxPixels: maxPixels)
    let (c, h, w) = model.inputShape
    guard h == w else { throw ServingError(status: 500, "model input \(h)x\(w) is not square; image preprocessing needs square") }
    var pixels: [Float] = []
    pixels.reserveCapacity(c * h * w)
    image.pixels.withUnsafeBufferPointer {
        preprocessImage(
            $0, width: image.width, height: image.height, channels: image.channels, outChannels: c,
            size: h, scaling: .unit, into: &pixels)
    }
    return pixels
}

/// 413 at once when the request's `Content-Length` already says its body is over `maxBodyBytes`:
/// neither a place nor memory is spent on a body that would be refused.
func refuseDeclaredOversize(_ request: Request, state: ServingState) throws {
    let limit = state.limits.maxBodyBytes
    guard let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit else { return }
    throw ServingError(status: 413, "request body of \(declared) bytes is over the limit of \(limit)")
}

/// Collects the body up to `maxBodyBytes` (413 above), within `requestTimeout` (408 after).
func collectBody(_ request: Request, state: ServingState) async throws -> ByteBuffer {
    try refuseDeclaredOversize(request, state: state)
    let (limit, timeout) = (state.limits.maxBodyBytes, state.limits.requestTimeout)
    return try await withThrowingTaskGroup(of: ByteBuffer.self) { group in
        group.addTask { try await request.body.collect(upTo: limit) }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw ServingError(status: 408, "request body not received within \(timeout)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

func decode<T: Decodable>(_ type: T.Type, _ body: ByteBuffer) throws -> T {
    do { return try JSONDecoder().decode(type, from: Data(buffer: body)) } catch {
        throw ServingError.badRequest("body is not a valid \(T.self): \(describe(error))")
    }
}

/// A JSON response (sorted keys).
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: try jsonEncoder().encode(value))))
}

/// The encoder of every JSON answer: sorted keys, slashes unescaped.
func jsonEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}

/// A decoding error in one line (Foundation's descriptions span several).
func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.dataCorrupted(let context), DecodingError.typeMismatch(_, let context),
        DecodingError.valueNotFound(_, let context):
        let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return (path.isEmpty ? "" : "at \(path): ") + context.debugDescription
    case DecodingError.keyNotFound(let key, _): return "missing key '\(key.stringValue)'"
    default: return "\(error)"
    }
}
