import Foundation

/// A classifier the server can serve: images NCHW in [0, 1] in, class probabilities out.
///
/// The project's `Classification.Predictor` plugs in by conforming (a few lines: forward the
/// properties and `predict`) and by a `ModelLoader` that opens its checkpoint.
public protocol InferenceModel: Sendable {
    /// Registered model name.
    var name: String { get }
    /// Registered version.
    var version: Int { get }
    /// Class names in output order.
    var classNames: [String] { get }
    /// The (C, H, W) every input image must have.
    var inputShape: (channels: Int, height: Int, width: Int) { get }
    /// Maps `count` images, `pixels` NCHW in [0, 1] (`count * C * H * W` values), to one row of
    /// `classNames.count` probabilities per image.
    func predict(_ pixels: [Float], count: Int) throws -> [[Float]]
}

/// Opens the weights of a registered version as a servable model.
public typealias ModelLoader = @Sendable (_ name: String, _ version: Int, _ artifactPath: String) throws -> any InferenceModel

/// A request the server refuses, or a server-side failure, with the HTTP status it maps to.
public struct ServingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// HTTP status code (4xx for the client's mistakes, 5xx for ours).
    public var status: Int
    /// What is wrong, naming the value at fault.
    public var message: String

    /// Creates an error with an HTTP status.
    public init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status): \(message)" }

    static func badRequest(_ message: String) -> ServingError { ServingError(status: 400, message) }
}
