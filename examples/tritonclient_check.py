"""Drives `medsynth serve` with Triton's standard Open Inference Protocol client, tritonclient.http.

Checks the core protocol (health, server and model metadata, versioned and unversioned routes,
requested outputs) in binary mode (the client's default: tensors after the JSON, with
Inference-Header-Content-Length) and in JSON mode, and that every mode answers the same
probabilities. Writes the probabilities (binary mode, UINT8 input) to --out as JSON, for the
caller to compare with `medsynth evaluate`. Any failed check exits non-zero with the reason.

    python3 examples/tritonclient_check.py --url 127.0.0.1:8080 --model breast --version 1 \
        --pixels images.u8 --shape 30,1,28,28 --out answer.json

--pixels: N*C*H*W bytes, NCHW row-major, values 0..255 (the images as the model sees them).
"""

import argparse
import json
import sys
import time

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")


def expect_error(call, status, text):
    """`call` must raise the client's exception with HTTP `status` and `text` in its message."""
    try:
        call()
    except InferenceServerException as error:
        check(error.status() == str(status), f"expected HTTP {status}, got {error.status()}: {error.message()}")
        check(text in error.message(), f"expected '{text}' in the error, got: {error.message()}")
        return
    sys.exit(f"FAILED: expected HTTP {status} ({text}), got a success")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--pixels", required=True)
    parser.add_argument("--shape", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    shape = [int(d) for d in args.shape.split(",")]
    images = np.fromfile(args.pixels, dtype=np.uint8).reshape(shape)  # (N, C, H, W)
    unit = images.astype(np.float32) / np.float32(255)  # FP32 in [0, 1]

    client = httpclient.InferenceServerClient(url=args.url)
    deadline = time.monotonic() + 120
    while not client.is_server_ready():  # the weights load in the background
        check(time.monotonic() < deadline, "server not ready within 120 s")
        time.sleep(0.2)
    check(client.is_server_live(), "is_server_live")
    check(client.is_model_ready(args.model), "is_model_ready (unversioned)")
    check(client.is_model_ready(args.model, args.version), "is_model_ready (versioned)")
    check(not client.is_model_ready(args.model, "999"), "an unknown version must not be ready")

    server = client.get_server_metadata()
    check(server["name"] == "medsynth", f"server metadata: {server}")
    check("binary_tensor_data" in server["extensions"], f"server extensions: {server}")

    metadata = client.get_model_metadata(args.model)
    check(metadata == client.get_model_metadata(args.model, args.version), "versioned metadata differs")
    check(metadata["versions"] == [args.version], f"versions: {metadata['versions']}")
    check(metadata["inputs"][0]["shape"][1:] == shape[1:], f"input shape: {metadata['inputs']}")
    check([o["name"] for o in metadata["outputs"]] == ["probabilities", "label"], f"outputs: {metadata['outputs']}")
    classes = metadata["classNames"]
    expect_error(lambda: client.get_model_metadata(args.model, "999"), 404, "no version '999'")
    expect_error(lambda: client.get_model_metadata("no-such-model"), 404, "unknown model")

    def infer(data, datatype, binary, version="", outputs=None):
        tensor = httpclient.InferInput("images", list(data.shape), datatype)
        tensor.set_data_from_numpy(data, binary_data=binary)
        requested = None if outputs is None else [httpclient.InferRequestedOutput(n, binary_data=binary) for n in outputs]
        result = client.infer(args.model, [tensor], model_version=version, outputs=requested, request_id="check")
        response = result.get_response()
        check(response["model_name"] == args.model and response["model_version"] == args.version, f"{response}")
        check(response.get("id") == "check", f"id not echoed: {response}")
        return result, response

    runs = {}
    # Binary mode, the client's default: tensors after the JSON, every output as binary data.
    for name, data, datatype, version in [
        ("binary UINT8 unversioned", images, "UINT8", ""),
        ("binary FP32 versioned", unit, "FP32", args.version),
    ]:
        result, response = infer(data, datatype, True, version)
        check([o["name"] for o in response["outputs"]] == ["probabilities", "label"], f"{name}: {response['outputs']}")
        check(all("binary_data_size" in o.get("parameters", {}) for o in response["outputs"]), f"{name}: not binary")
        runs[name] = (result.as_numpy("probabilities"), result.as_numpy("label"))
    # JSON mode: values in the JSON both ways; requested outputs one at a time.
    for name, data, datatype, version in [
        ("json FP32 unversioned", unit, "FP32", ""),
        ("json UINT8 versioned", images, "UINT8", args.version),
    ]:
        result, response = infer(data, datatype, False, version, outputs=["probabilities"])
        check([o["name"] for o in response["outputs"]] == ["probabilities"], f"{name}: {response['outputs']}")
        check("data" in response["outputs"][0], f"{name}: probabilities not in JSON")
        probabilities = result.as_numpy("probabilities")
        check(result.as_numpy("label") is None, f"{name}: label returned though not requested")
        result, response = infer(data, datatype, False, version, outputs=["label"])
        check([o["name"] for o in response["outputs"]] == ["label"], f"{name}: {response['outputs']}")
        runs[name] = (probabilities, result.as_numpy("label"))
    # Binary input, binary label only.
    result, response = infer(images, "UINT8", True, args.version, outputs=["label"])
    check([o["name"] for o in response["outputs"]] == ["label"], f"binary label only: {response['outputs']}")
    check(result.as_numpy("probabilities") is None, "binary label only: probabilities returned")

    expect_error(lambda: infer(images, "UINT8", True, outputs=["logits"]), 400, "unknown output 'logits'")
    expect_error(lambda: infer(images, "UINT8", True, version="999"), 404, "no version '999'")
    expect_error(lambda: infer(images[:, :, :-1], "UINT8", True), 400, "the model takes")

    reference, _ = runs["binary UINT8 unversioned"]
    check(reference.shape == (shape[0], len(classes)), f"probabilities shape {reference.shape}")
    predicted = [classes[i] for i in reference.argmax(axis=1)]
    for name, (probabilities, labels) in runs.items():
        difference = float(np.abs(probabilities - reference).max())
        check(difference <= 1e-6, f"{name}: probabilities differ from binary UINT8 by {difference}")
        labels = [v.decode() if isinstance(v, bytes) else str(v) for v in labels.reshape(-1)]
        check(labels == predicted, f"{name}: labels {labels} are not the argmax classes {predicted}")
        print(f"{name}: max |difference| {difference:.2e}, labels match")
    with open(args.out, "w") as out:
        json.dump({"classNames": classes, "probabilities": reference.tolist(), "labels": predicted}, out)


if __name__ == "__main__":
    main()
