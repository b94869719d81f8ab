import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Guards one HTTP/1.1 connection below the router: a deadline for request headers, and JSON
/// answers to malformed HTTP. It sits in the channel pipeline after HTTP parsing and before the
/// request handlers (Hummingbird's `additionalChannelHandlers`), one instance per connection.
///
/// - Header deadline: the request line and headers must have arrived `headerTimeout` after the
///   connection could take a request (it was accepted, or the previous response was sent);
///   else the server answers 408 with a JSON error and closes. A client that trickles one byte
///   every 0.5 s is cut off; an idle keep-alive connection ends the same way.
/// - Malformed HTTP: NIO's parser errors become the JSON error every route gives: 431 when the
///   request line and headers exceed `maxHeaderBytes` (a long URL included), else 400. Between
///   requests this handler answers and closes; inside a request (a bad chunk size in its body)
///   the error reaches the route reading the body as a `ServingError`, and the JSON-error
///   middleware answers it.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The most bytes the request line and headers may take together (NIO's decoder enforces it,
    /// set in `buildApplication`); also what a connection can hold while its headers trickle in.
    static let maxHeaderBytes = 16 * 1024

    private let headerTimeout: Duration
    private var deadline: Scheduled<Void>?
    /// Requests whose head has been read and whose response has not ended.
    private var unanswered = 0
    /// Set once this handler has answered by itself: the connection is closing.
    private var closing = false

    init(headerTimeout: Duration) { self.headerTimeout = headerTimeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armDeadline(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { cancelDeadline() }

    func channelActive(context: ChannelHandlerContext) {
        armDeadline(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        if case .head = unwrapInboundIn(data) {
            unanswered += 1
            cancelDeadline()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered -= 1
            if unanswered == 0 { armDeadline(context) }  // the next request's headers are due
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        let (status, message) = Self.describe(parserError)
        if unanswered == 0 {
            answer(context, status: status, message: message)
        } else {
            context.fireErrorCaught(ServingError(status: status.code, message))
        }
    }

    /// The status and message for a parser error.
    static func describe(_ error: HTTPParserError) -> (HTTPResponse.Status, String) {
        switch error {
        case .headerOverflow:
            return (.init(code: 431), "request line and headers exceed \(maxHeaderBytes / 1024) KiB")
        case .invalidChunkSize:
            return (.badRequest, "malformed request body: invalid chunk size")
        default:
            return (.badRequest, "malformed HTTP request (\(error))")
        }
    }

    private func armDeadline(_ context: ChannelHandlerContext) {
        guard deadline == nil, !closing else { return }
        let (seconds, attoseconds) = headerTimeout.components
        let delay = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            deadline = nil
            guard unanswered == 0 else { return }
            answer(context, status: .requestTimeout, message: "request headers not received within \(headerTimeout)")
        }
    }

    private func cancelDeadline() {
        deadline?.cancel()
        deadline = nil
    }

    /// Writes `{"error": message}` with `status` and closes the connection once it is sent.
    private func answer(_ context: ChannelHandlerContext, status: HTTPResponse.Status, message: String) {
        guard !closing else { return }
        closing = true
        cancelDeadline()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(["error": message])) ?? Data(#"{"error":"bad request"}"#.utf8)
        let body = ByteBuffer(bytes: json)
        let head = HTTPResponse(
            status: status,
            headerFields: [
                .contentType: "application/json", .contentLength: "\(body.readableBytes)", .connection: "close",
            ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let sent = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: sent)
        sent.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
