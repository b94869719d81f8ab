"""The peer for bench/serve/load.sh: the served classifier in PyTorch behind a minimal HTTP server.

Loads the checkpoint `medsynth train` wrote (the same .safetensors file `medsynth serve` serves)
with `examples/onnx_and_torch.py`'s modules (ResNet or paper CNN, torch state-dict names), and
answers `POST /v1/models/<name>/predict` with a PNG/JPEG body like `medsynth serve`: the same
preprocessing (`preprocess`: gray or RGB, resized to the checkpoint's side, scaled as its metadata
says), softmax, and the same JSON answer (probabilities by class name, predicted, model, version).
One request, one forward pass (batch 1), as PyTorch serves without a batching layer. Not run in CI.

    python peer_server.py --weights DIR/model.safetensors --port 18081 [--threads 1] [--channels-last]
"""
import argparse
import io
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
from onnx_and_torch import load_torch, preprocess  # noqa: E402 - the models live with the example


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True, help="a medsynth classifier checkpoint (.safetensors)")
    parser.add_argument("--name", default="breast", help="the model name answered")
    parser.add_argument("--version", type=int, default=1, help="the version answered")
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--channels-last", action="store_true", help="weights and inputs in NHWC")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_torch(args.weights)
    config, scaling = meta["config"], meta["preprocessing"]["scaling"]
    classes = meta["classNames"]
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # NOTE: headers and body go out in separate writes; with Nagle on, every response waits
        # ~40 ms for the client's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, *_):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                x = preprocess(io.BytesIO(body), config["imageSize"], config["channels"], scaling)  # (1, C, S, S)
            except Exception as error:  # noqa: BLE001 - any decoding failure is the client's
                return self.answer(400, {"error": str(error)})
            with torch.inference_mode():
                x = torch.from_numpy(x).contiguous(memory_format=memory_format)
                p = torch.softmax(model(x), dim=1)[0].tolist()  # (K,)
            best = max(range(len(p)), key=p.__getitem__)
            self.answer(200, {"model": args.name, "predicted": classes[best],
                              "probabilities": dict(zip(classes, p)), "version": args.version})

        def answer(self, status, payload):
            data = json.dumps(payload, sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
