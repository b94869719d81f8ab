"""The Python way back: a MedSynth classifier in PyTorch (from its .safetensors checkpoint) and in
ONNX Runtime (from `medsynth models export ... --format onnx`), both predicting one image.

    pip install torch onnxruntime safetensors numpy pillow
    python3 examples/onnx_and_torch.py model.safetensors model.onnx image.png

The checkpoint's tensors keep PyTorch's state-dict names (`net.stem.0.weight`, `net.stages.0.bn1.
running_var`, ...), so the torch modules below load them as they are. Preprocessing as MedSynth's:
gray or RGB, resized to S x S (area averaging when shrinking, bilinear when enlarging; an image
already S x S, like the MedMNIST files, is used as it is), then pixels / 255 (scaling `unit`) or
pixels / 127.5 - 1 (`symmetric`). Shapes: N batch, C channels, S side, K classes.
"""

import json
import sys

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn


def paper_cnn(c):
    """[Conv3x3 -> ReLU -> MaxPool2] per block, Flatten, Dense 128, ReLU, Dropout, Dense K."""
    layers, channels, side, widths = [], c["channels"], c["imageSize"], [32, 64, 128, 128, 128]
    while side // 2 >= 3 and len(layers) < 15:  # 28 px: 3 blocks to 3x3; 64: 4 to 4x4; 128: 5
        w = widths[len(layers) // 3]
        layers += [nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, side = w, side // 2
    layers += [nn.Flatten(), nn.Linear(channels * side * side, 128), nn.ReLU(), nn.Dropout(c["dropout"])]
    return nn.Sequential(*layers, nn.Linear(128, c["classes"]))  # (N, K)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1x1 conv + BN or x."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """A 3x3 stem (stride 2 from 64 px, a max pool too at 128 px), stages 32, 64, 128, pool, fc."""

    def __init__(self, c):
        super().__init__()
        s = c["imageSize"]
        stem = [nn.Conv2d(c["channels"], 32, 3, 2 if s >= 64 else 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
        self.stem = nn.Sequential(*stem, *([nn.MaxPool2d(3, 2, 1)] if s >= 128 else []))
        self.stages = nn.Sequential(BasicBlock(32, 32, 1), BasicBlock(32, 64, 2), BasicBlock(64, 128, 2))
        self.fc = nn.Linear(128, c["classes"])

    def forward(self, x):  # (N, C, S, S) -> (N, 128, S', S') -> (N, 128) -> (N, K)
        return self.fc(self.stages(self.stem(x)).mean((2, 3)))


class Classifier(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.net = paper_cnn(c) if c["arch"] == "paper-cnn" else ResNet(c)

    def forward(self, x):
        return self.net(x)


def load_torch(path):
    with safe_open(path, framework="pt") as f:
        meta = json.loads(f.metadata()["classifier"])
    model = Classifier(meta["config"])
    state = load_file(path)
    # NOTE: MedSynth stores num_batches_tracked as float32 of shape (1,); torch wants an int64 scalar.
    state = {k: (v.reshape(()).long() if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
    model.load_state_dict(state)
    return model.eval(), meta  # eval: batch norm reads its running statistics, dropout is off


def preprocess(image, size, channels, scaling):
    """(1, C, S, S) float32 from an image file's path or a file object holding its bytes."""
    image = Image.open(image).convert("L" if channels == 1 else "RGB")
    if image.size != (size, size):
        shrinking = image.size[0] > size
        image = image.resize((size, size), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)
    x = np.asarray(image, dtype=np.float32).reshape(size, size, channels).transpose(2, 0, 1)[None]  # (1, C, S, S)
    return x / 255 if scaling == "unit" else x / 127.5 - 1


def main(checkpoint, onnx_path, image_path):
    import onnxruntime as ort  # here, so that bench/serve/peer_server.py can import the models without it

    model, meta = load_torch(checkpoint)
    c = meta["config"]
    x = preprocess(image_path, c["imageSize"], c["channels"], meta["preprocessing"]["scaling"])
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()[0]

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = json.loads(session.get_modelmeta().custom_metadata_map["class_names"])
    onnx_logits = session.run(["logits"], {"input": x})[0][0]

    for who, logits in [("pytorch", torch_logits), ("onnxruntime", onnx_logits)]:
        p = np.exp(logits - logits.max()); p /= p.sum()
        print(f"{who:12} {names[int(p.argmax())]}  " + "  ".join(f"{n} {q:.4f}" for n, q in zip(names, p)))
    print(f"max |logit difference| {np.abs(torch_logits - onnx_logits).max():.2e}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: onnx_and_torch.py MODEL.safetensors MODEL.onnx IMAGE")
    main(*sys.argv[1:])
