import Foundation

/// Request counts, a latency histogram, predictions per class and drift gauges, rendered in the
/// Prometheus text exposition format (version 0.0.4).
public final class ServerMetrics: @unchecked Sendable {
    // NOTE: @unchecked: all mutable state is guarded by `lock`.
    /// Upper bounds (seconds) of the latency histogram's buckets.
    public static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    struct RequestKey: Hashable { var method: String, route: String, status: Int }
    struct Histogram {
        var buckets = [Int](repeating: 0, count: ServerMetrics.latencyBuckets.count); var sum = 0.0; var count = 0
    }
    struct PredictionKey: Hashable { var model: String, version: Int, className: String }
    /// Upper bounds of the batch-size histogram's buckets (images per model run).
    public static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    private let lock = NSLock()
    private var requests: [RequestKey: Int] = [:]
    private var latency: [String: Histogram] = [:]
    private var predictions: [PredictionKey: Int] = [:]
    private var driftEvents = 0
    private var batches = Histogram(buckets: [Int](repeating: 0, count: ServerMetrics.batchBuckets.count))

    public init() {}

    /// Counts one answered request; `route` is the matched pattern (e.g. `/v2/models/:name/infer`).
    public func recordRequest(method: String, route: String, status: Int, seconds: Double) {
        lock.withLock {
            requests[RequestKey(method: method, route: route, status: status), default: 0] += 1
            var histogram = latency[route, default: Histogram()]
            // Each bucket counts observations <= its bound (made cumulative when rendered).
            if let bucket = Self.latencyBuckets.firstIndex(where: { seconds <= $0 }) { histogram.buckets[bucket] += 1 }
            histogram.sum += seconds
            histogram.count += 1
            latency[route] = histogram
        }
    }

    /// Counts one prediction of `className` by a model version.
    public func recordPrediction(model: String, version: Int, className: String) {
        lock.withLock { predictions[PredictionKey(model: model, version: version, className: className), default: 0] += 1 }
    }

    /// Counts one model run of `images` images (a batch of one or more requests).
    public func recordBatch(images: Int) {
        lock.withLock {
            if let bucket = Self.batchBuckets.firstIndex(where: { Double(images) <= $0 }) { batches.buckets[bucket] += 1 }
            batches.sum += Double(images)
            batches.count += 1
        }
    }

    /// Counts one drift event (stable -> drifting).
    public func recordDriftEvent() { lock.withLock { driftEvents += 1 } }

    /// The exposition text: counters and histogram, the admission and queue gauges, plus the
    /// served model (nil while none is loaded) and drift gauges.
    public func render(model: (any InferenceModel)?, drift: DriftReport?, inFlight: Int, waiting: Int) -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        func line(_ name: String, _ labels: [(String, String)], _ value: Double) {
            let text = labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
            out += "\(name)\(labels.isEmpty ? "" : "{\(text)}") \(number(value))\n"
        }
        family("medsynth_http_requests_total", "counter", "HTTP requests answered, by method, route and status.")
        for (key, count) in requests.sorted(by: {
            ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status)
        }) {
            line(
                "medsynth_http_requests_total", [("method", key.method), ("route", key.route), ("status", "\(key.status)")],
                Double(count))
        }
        family("medsynth_http_request_duration_seconds", "histogram", "Time from request to response, by route.")
        for (route, histogram) in latency.sorted(by: { $0.key < $1.key }) {
            var cumulative = 0
            for (bound, count) in zip(Self.latencyBuckets, histogram.buckets) {
                cumulative += count
                line(
                    "medsynth_http_request_duration_seconds_bucket", [("route", route), ("le", number(bound))], Double(cumulative)
                )
            }
            line("medsynth_http_request_duration_seconds_bucket", [("route", route), ("le", "+Inf")], Double(histogram.count))
            line("medsynth_http_request_duration_seconds_sum", [("route", route)], histogram.sum)
            line("medsynth_http_request_duration_seconds_count", [("route", route)], Double(histogram.count))
        }
        family("medsynth_inference_batch_images", "histogram", "Images per model run (requests batched together).")
        var cumulative = 0
        for (bound, count) in zip(Self.batchBuckets, batches.buckets) {
            cumulative += count
            line("medsynth_inference_batch_images_bucket", [("le", number(bound))], Double(cumulative))
        }
        line("medsynth_inference_batch_images_bucket", [("le", "+Inf")], Double(batches.count))
        line("medsynth_inference_batch_images_sum", [], batches.sum)
        line("medsynth_inference_batch_images_count", [], Double(batches.count))
        family("medsynth_http_requests_in_flight", "gauge", "Inference requests admitted now (receiving, waiting or computing).")
        line("medsynth_http_requests_in_flight", [], Double(inFlight))
        family("medsynth_inference_jobs_waiting", "gauge", "Decoding and inference jobs waiting for an inference thread.")
        line("medsynth_inference_jobs_waiting", [], Double(waiting))
        family("medsynth_model_ready", "gauge", "1 once a model version is loaded and answering.")
        line("medsynth_model_ready", [], model == nil ? 0 : 1)
        if let model {
            family("medsynth_model_info", "gauge", "The model version being served (always 1).")
            line("medsynth_model_info", [("model", model.name), ("version", "\(model.version)")], 1)
        }
        family("medsynth_predictions_total", "counter", "Predicted classes, by model version.")
        for (key, count) in predictions.sorted(by: {
            ($0.key.model, $0.key.version, $0.key.className) < ($1.key.model, $1.key.version, $1.key.className)
        }) {
            line(
                "medsynth_predictions_total", [("model", key.model), ("version", "\(key.version)"), ("class", key.className)],
                Double(count))
        }
        family("medsynth_drift_events_total", "counter", "Times the drift verdict turned from stable to drifting.")
        line("medsynth_drift_events_total", [], Double(driftEvents))
        if let drift {
            let labels = [("model", drift.model)]
            family("medsynth_drift_window_samples", "gauge", "Predictions in the drift window.")
            line("medsynth_drift_window_samples", labels, Double(drift.samples))
            family("medsynth_drift_class_psi", "gauge", "PSI of predicted classes against the training set.")
            line("medsynth_drift_class_psi", labels, drift.classPSI)
            family("medsynth_drift_intensity_psi", "gauge", "PSI of mean input intensity against the training set.")
            line("medsynth_drift_intensity_psi", labels, drift.intensityPSI)
            family("medsynth_drift_class_chi2_p_value", "gauge", "Chi-square p-value of predicted classes.")
            line("medsynth_drift_class_chi2_p_value", labels, drift.chiSquarePValue)
            family("medsynth_drift_active", "gauge", "1 while a drift threshold is crossed.")
            line("medsynth_drift_active", labels, drift.drifting ? 1 : 0)
        }
        return out
    }
}

/// Label values escape backslash, double quote and newline.
func escape(_ value: String) -> String {
    value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: "\\n")
}

/// Shortest round-trip text of a sample value (`NaN`, `+Inf`, `-Inf` as Prometheus spells them).
func number(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
}
