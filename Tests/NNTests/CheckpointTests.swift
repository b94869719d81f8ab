import Foundation
import SeededRandom
import TestSupport
import Testing

@testable import Autodiff
@testable import NN

func tempURL(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("medsynth-test-\(UUID().uuidString)").appendingPathComponent(
        name)
}

func smallNet(seed: UInt64) -> Sequential {
    var g = SeededGenerator(seed: seed)
    return Sequential([
        Conv2d(1, 4, kernelSize: 3, generator: &g), BatchNorm2d(4), ReLU(), Flatten(),
        Linear(4 * 3 * 3, 2, generator: &g),
    ])
}

@Test func checkpointRoundTripsModelAndOptimizerExactly() throws {
    let net = smallNet(seed: 1)
    let adam = Adam(net.parameters, learningRate: 0.01)
    var g = SeededGenerator(seed: 2)
    let x = Tensor.randomNormal([2, 1, 5, 5], generator: &g)
    try Loss.crossEntropy(net(x), labels: [0, 1]).backward()
    adam.step()
    let url = tempURL("ckpt.safetensors")
    try Checkpoint.save(modules: ["model": net], optimizers: ["model": adam], metadata: ["epoch": "3"], to: url)

    let other = smallNet(seed: 9)
    let otherAdam = Adam(other.parameters, learningRate: 0.01)
    let file = try Checkpoint.load(from: url, modules: ["model": other], optimizers: ["model": otherAdam])
    #expect(file.metadata["epoch"] == "3")
    for ((n1, p1), (n2, p2)) in zip(net.stateTensors, other.stateTensors) {
        #expect(n1 == n2)
        #expect(p1.value.scalars == p2.value.scalars)
    }
    #expect(otherAdam.stepCount == 1)
    #expect(otherAdam.m.map(\.scalars) == adam.m.map(\.scalars))
    // No temporary files are left behind.
    let siblings = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
    #expect(siblings == ["ckpt.safetensors"])
}

@Test func wrongCheckpointNamesMissingAndMisshapenTensors() throws {
    let url = tempURL("bad.safetensors")
    var state = smallNet(seed: 1).stateDict()
    state.removeValue(forKey: "0.bias")
    state["4.weight"] = .zeros([3, 3])
    try SafeTensors.write(state, to: url)
    let file = try SafeTensors.read(url)
    do {
        try smallNet(seed: 2).loadStateDict(file.tensors)
        Issue.record("expected an error")
    } catch let e as CheckpointError {
        let text = e.description
        #expect(text.contains("0.bias") && text.contains("4.weight") && text.contains("[2, 36]") && text.contains("[3, 3]"))
    }
}

@Test func truncatedAndForeignFilesAreRefused() throws {
    let url = tempURL("t.safetensors")
    try SafeTensors.write(smallNet(seed: 1).stateDict(), to: url)
    let bytes = try Data(contentsOf: url)
    for cut in [0, 5, 8, 40, bytes.count - 1] {
        #expect(throws: CheckpointError.self) { try SafeTensors.decode(bytes.prefix(cut), path: "t") }
    }
    #expect(throws: CheckpointError.self) { try SafeTensors.decode(Data("hello, this is not a checkpoint".utf8), path: "x") }
    var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]); png.append(Data(repeating: 0, count: 64))
    #expect(throws: CheckpointError.self) { try SafeTensors.decode(png, path: "x.png") }
    #expect(throws: CheckpointError.self) { try SafeTensors.read(URL(fileURLWithPath: "/nonexistent/x.safetensors")) }
}

/// The file must be readable by the Python `safetensors` package (the reference reader).
/// scripts/setup.sh installs python3 with safetensors, so a machine without them fails here
/// instead of skipping the only independent check of our writer.
@Test func pythonSafetensorsReadsOurFile() async throws {
    try #require(try pythonCanImport("safetensors.numpy"), "python3 with safetensors is not installed: run scripts/setup.sh")
    let url = tempURL("py.safetensors")
    let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6.5])
    try SafeTensors.write(["layer.weight": t, "b": Tensor(7)], metadata: ["format": "pt"], to: url)
    let script = """
        from safetensors.numpy import load_file
        from safetensors import safe_open
        d = load_file('\(url.path)')
        assert d['layer.weight'].shape == (2, 3) and d['layer.weight'].dtype.name == 'float32', d
        assert d['layer.weight'].tolist() == [[1, 2, 3], [4, 5, 6.5]] and float(d['b']) == 7
        import hashlib, struct
        raw = open('\(url.path)', 'rb').read()
        n = struct.unpack('<Q', raw[:8])[0]
        with safe_open('\(url.path)', framework='numpy') as f: m = f.metadata()
        assert m == {'format': 'pt', 'tensors_sha256': hashlib.sha256(raw[8 + n:]).hexdigest()}, m
        """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    try p.run()
    await exited(p)
    #expect(p.terminationStatus == 0, "the Python reader refused or misread our file (its assertion is above)")
}

@Test func aFlippedTensorByteIsRefusedByTheChecksum() throws {
    let url = tempURL("flip.safetensors")
    try SafeTensors.write(smallNet(seed: 1).stateDict(), metadata: ["epoch": "1"], to: url)
    var bytes = try Data(contentsOf: url)
    #expect(SafeTensors.hasChecksum(try SafeTensors.decode(bytes, path: "ok").metadata))
    bytes[bytes.count - 3] ^= 0x10  // one bit of the last tensor's data
    do {
        _ = try SafeTensors.decode(bytes, path: url.path)
        Issue.record("a flipped byte was accepted")
    } catch let error as CheckpointError {
        guard case .checksumMismatch(let path, _, _) = error else { Issue.record("\(error)"); return }
        #expect(path == url.path && error.description.contains("is corrupt"))
    }
}

@Test func aCheckpointWrittenBeforeChecksumsStillLoads() throws {
    var header = Array(#"{"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var bytes = Data((0..<8).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) })
    bytes.append(contentsOf: header)
    [Float(1.5), 2.5].withUnsafeBytes { bytes.append(contentsOf: $0) }
    let file = try SafeTensors.decode(bytes, path: "legacy.safetensors")
    #expect(file.tensors["a.weight"]?.scalars == [1.5, 2.5])
    #expect(!SafeTensors.hasChecksum(file.metadata))
}

@Test func leftoversOfKilledAtomicWritesAreCleanedUpOnTheNextWrite() throws {
    let url = tempURL("ckpt.safetensors")
    let folder = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    // A write killed before its rename leaves `.<name>.tmp-<pid>-<random>`; pid 2^22+1 is beyond
    // Linux's pid_max default, so no process owns it. A live writer's file must survive.
    let dead = folder.appendingPathComponent(".ckpt.safetensors.tmp-4194305-123").path
    let live = folder.appendingPathComponent(".other.bin.tmp-\(getpid())-7").path
    FileManager.default.createFile(atPath: dead, contents: Data(repeating: 1, count: 100))
    FileManager.default.createFile(atPath: live, contents: Data(repeating: 1, count: 100))
    try SafeTensors.write(smallNet(seed: 1).stateDict(), to: url)
    let siblings = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    #expect(siblings == [".other.bin.tmp-\(getpid())-7", "ckpt.safetensors"])
}
