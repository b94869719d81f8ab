import Datasets
import Foundation
import TestSupport
import Testing

// The independent check of the protocol: Triton's own Python client (tritonclient.http, from PyPI,
// installed by scripts/setup.sh) drives the real `medsynth serve` over a socket, in its default
// binary mode and in JSON mode, and its probabilities must score as `medsynth evaluate` scores
// the same model on the same images.

/// Fails (never skips) when python3 lacks tritonclient or numpy: scripts/setup.sh installs them.
func requireTritonClient() throws {
    try #require(
        try pythonCanImport("numpy, tritonclient.http"),
        "python3 with tritonclient[http] and numpy is not installed: run scripts/setup.sh")
}

/// Runs `executable arguments`; its exit status and standard output, standard error appended to `log`.
@discardableResult
func runProcess(_ executable: URL, _ arguments: [String], log: String) async throws -> (status: Int32, stdout: String) {
    let p = Process(), stdout = Pipe()
    p.executableURL = executable
    p.arguments = arguments
    p.standardOutput = stdout
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    try p.run()
    // Read and waited for on a thread of its own, not one of the cooperative pool's.
    let out = await exited(p, reading: stdout)
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

/// Copies the first `count` PNGs of each class, from `skip` on, into `folder/<class>/`.
func copyImages(to folder: String, skip: Int, count: Int) throws {
    let source = TestSupport.sharedData("breastmnist-png")
    for name in ["malignant", "normal_or_benign"] {
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(source)/\(name)").sorted().dropFirst(skip).prefix(
            count)
        try FileManager.default.createDirectory(atPath: "\(folder)/\(name)", withIntermediateDirectories: true)
        for file in files {
            try FileManager.default.copyItem(atPath: "\(source)/\(name)/\(file)", toPath: "\(folder)/\(name)/\(file)")
        }
    }
}

@Test(.timeLimit(.minutes(10))) func tritonClientDrivesMedsynthServe() async throws {
    try requireTritonClient()
    let executable = TestSupport.medsynthExecutable()
    let medsynth = try #require(executable, "medsynth executable not found next to the tests")
    let folder = try makeTemporaryFolder()
    defer { removeTemporary(folder) }
    let (train, test, out, store) = ("\(folder)/train", "\(folder)/test", "\(folder)/run", "\(folder)/store.sqlite")
    try copyImages(to: train, skip: 0, count: 40)
    try copyImages(to: test, skip: 40, count: 20)

    // A small real classifier, registered as breast version 1.
    let trained = try await runProcess(
        medsynth,
        [
            "train", "--data", train, "--test", test, "--arch", "paper-cnn", "--epochs", "2", "--batch-size", "16",
            "--out", out, "--store", store,
        ], log: "\(folder)/train.log")
    let trainLog = (try? String(contentsOfFile: "\(folder)/train.log", encoding: .utf8)) ?? ""
    try #require(trained.status == 0, "medsynth train failed: \(trainLog)")
    let runID = try #require(
        trained.stdout.split(separator: "\n").first { $0.hasPrefix("MEDSYNTH_RUN_ID=") }?.dropFirst("MEDSYNTH_RUN_ID=".count))
    let registered = try await runProcess(
        medsynth, ["models", "register", String(runID), "--name", "breast", "--store", store], log: "\(folder)/register.log")
    try #require(registered.status == 0, "\(registered.stdout)")

    // `medsynth evaluate`'s report on the test images: the reference.
    let evaluated = try await runProcess(
        medsynth, ["evaluate", "--model", "\(out)/model.safetensors", "--test", test, "--json"], log: "\(folder)/evaluate.log")
    try #require(evaluated.status == 0)
    let parsed = try JSONSerialization.jsonObject(with: Data(evaluated.stdout.utf8))
    let report = try #require(parsed as? [String: Any])
    let evaluateMatrix = try #require(report["confusion_matrix"] as? [[Int]])
    let evaluateLoss = try #require(report["loss"] as? Double)
    let evaluateClasses = try #require(report["class_names"] as? [String])

    // The same images as the model sees them (28x28 gray), as bytes for the client.
    let images = try loadDataset(at: test, options: LoadOptions(preprocessing: Preprocessing(imageSize: 28, channels: 1)))
        .images
    let bytes = images.pixels.map { UInt8(($0 * 255).rounded()) }
    #expect(zip(bytes, images.pixels).allSatisfy { Float($0) / 255 == $1 }, "pixels are not whole bytes / 255")
    try Data(bytes).write(to: URL(fileURLWithPath: "\(folder)/images.u8"))

    // The real server on a free port; its log says which.
    let serveLog = "\(folder)/serve.log"
    _ = FileManager.default.createFile(atPath: serveLog, contents: nil)
    let server = Process()
    server.executableURL = medsynth
    server.arguments = ["serve", "--model", "breast", "--store", store, "--port", "0"]
    server.standardOutput = FileHandle.nullDevice
    server.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: serveLog))
    try server.run()
    do {
        try await checkServer(
            at: serveLog, server: server, folder: folder, images: images,
            evaluated: (evaluateMatrix, evaluateLoss, evaluateClasses))
    } catch {
        server.terminate()
        await exited(server)
        throw error
    }
    server.terminate()
    await exited(server)
}

/// The rest of `tritonClientDrivesMedsynthServe` once `server` runs (its caller stops it): the
/// client's answer on `images` scores as `medsynth evaluate` scored them (`evaluated`: its
/// confusion matrix, mean cross-entropy and class names).
func checkServer(
    at serveLog: String, server: Process, folder: String, images: LabeledImages,
    evaluated: (matrix: [[Int]], loss: Double, classes: [String])
) async throws {
    let (evaluateMatrix, evaluateLoss, evaluateClasses) = evaluated
    var port: Int?
    let deadline = ContinuousClock.now + .seconds(60)
    while port == nil, ContinuousClock.now < deadline, server.isRunning {
        let text = (try? String(contentsOfFile: serveLog, encoding: .utf8)) ?? ""
        port = text.split(separator: "\n").compactMap { $0.split(separator: "http://127.0.0.1:").last.flatMap { Int($0) } }.first
        if port == nil { try await Task.sleep(for: .milliseconds(100)) }
    }
    let serverText = (try? String(contentsOfFile: serveLog, encoding: .utf8)) ?? ""
    let boundPort = try #require(port, "no port in the server's log: \(serverText)")
    let url = "127.0.0.1:\(boundPort)"

    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/tritonclient_check.py").path
    let client = try await runProcess(
        URL(fileURLWithPath: "/usr/bin/env"),
        [
            "python3", script, "--url", url, "--model", "breast", "--version", "1", "--pixels", "\(folder)/images.u8",
            "--shape", "\(images.count),1,28,28", "--out", "\(folder)/answer.json",
        ], log: "\(folder)/client.log")
    let clientLog = (try? String(contentsOfFile: "\(folder)/client.log", encoding: .utf8)) ?? ""
    print(client.stdout)
    try #require(client.status == 0, "tritonclient check failed: \(clientLog)\n\(client.stdout)")

    // The client's probabilities score exactly as `medsynth evaluate` scores the same images.
    struct Answer: Decodable { let classNames: [String]; let probabilities: [[Double]]; let labels: [String] }
    let answer = try JSONDecoder().decode(Answer.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/answer.json")))
    #expect(answer.classNames == evaluateClasses && answer.probabilities.count == images.count)
    var matrix = [[Int]](repeating: [Int](repeating: 0, count: evaluateClasses.count), count: evaluateClasses.count)
    var loss = 0.0
    for (i, row) in answer.probabilities.enumerated() {
        let truth = try #require(evaluateClasses.firstIndex(of: images.classNames[images.labels[i]]))
        let predicted = row.indices.max { row[$0] < row[$1] }!
        #expect(answer.labels[i] == evaluateClasses[predicted])
        matrix[truth][predicted] += 1
        loss -= log(max(row[truth], 1e-12))
    }
    loss /= Double(images.count)
    print("tritonclient vs medsynth evaluate: confusion \(matrix) vs \(evaluateMatrix), loss \(loss) vs \(evaluateLoss)")
    #expect(matrix == evaluateMatrix)
    #expect(abs(loss - evaluateLoss) < 1e-5, "mean cross-entropy \(loss), evaluate's \(evaluateLoss)")
}
