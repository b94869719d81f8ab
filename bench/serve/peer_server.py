"""The peer for bench/serve/load.sh: the same tiny CNN in PyTorch behind a minimal HTTP server.

Loads the weights `medsynth models train-tiny` wrote (safetensors, read by hand: an 8-byte
header length, a JSON header, raw little-endian float32), and answers
`POST /v1/models/<name>/predict` with a PNG/JPEG body exactly like `medsynth serve`:
decode, gray, area-resize to 28x28, [0, 1], softmax, JSON. Not run in CI.

    python peer_server.py --weights DIR/model.safetensors --port 18081
"""
import argparse
import io
import json
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch
from PIL import Image
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        start, end = info["data_offsets"]
        tensors[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype="<f4").copy()).reshape(info["shape"])
    return tensors, metadata


class TinyCNN(nn.Module):
    """Sources/Serving/TinyCNN.swift, layer for layer (state-dict names match Sequential's)."""

    def __init__(self, channels, size, classes):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * (size // 4) ** 2, classes))

    def forward(self, x):
        return self.net(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tensors, metadata = read_safetensors(args.weights)
    classes = metadata["medsynth.classNames"].split("\n")
    channels, size, _ = (int(v) for v in metadata["medsynth.inputShape"].split(","))
    model = TinyCNN(channels, size, len(classes))
    model.net.load_state_dict(tensors)
    model.eval()

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
                image = Image.open(io.BytesIO(body)).convert("L" if channels == 1 else "RGB")
            except Exception as error:  # noqa: BLE001 - any decoding failure is the client's
                return self.answer(400, {"error": str(error)})
            image = image.resize((size, size), Image.BOX)
            x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).reshape(1, channels, size, size)
            with torch.no_grad():
                p = torch.softmax(model(x), dim=1)[0].tolist()
            best = max(range(len(p)), key=p.__getitem__)
            self.answer(200, {"probabilities": dict(zip(classes, p)), "predicted": classes[best],
                              "model": "breast", "version": 1})

        def answer(self, status, payload):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
