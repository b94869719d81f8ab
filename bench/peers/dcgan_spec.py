"""DCGAN architectures shared by the peer benchmarks, plus the analytic FLOP count.

The layer lists below are the single source of truth for both peers
(dcgan_torch.py and dcgan_tf.py build their models from them) and for the
FLOP count, so the count always matches what is timed.  They must match the
Swift models in MedSynth exactly.

Run `python bench/peers/dcgan_spec.py` to print the per-layer table and
the per-image GFLOP of one training step for both models.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple


@dataclass(frozen=True)
class Layer:
    kind: str              # "convT" (ConvTranspose2d) or "conv" (Conv2d); bias=False always
    cin: int
    cout: int
    k: int
    s: int
    p: int                 # PyTorch padding; the TF peer maps p=0 -> 'valid', k4 s2 p1 -> 'same'
    bn: bool               # BatchNorm2d(affine, momentum 0.1, eps 1e-5) after the conv
    act: Optional[str]     # "relu", "lrelu" (0.2), "tanh", or None (raw logit)


@dataclass(frozen=True)
class Model:
    name: str
    nz: int
    channels: int
    image_size: int
    G: Tuple[Layer, ...]
    D: Tuple[Layer, ...]


DCGAN64 = Model(
    name="dcgan64", nz=100, channels=3, image_size=64,
    G=(
        Layer("convT", 100, 512, 4, 1, 0, True, "relu"),    # -> 512x4x4
        Layer("convT", 512, 256, 4, 2, 1, True, "relu"),    # -> 256x8x8
        Layer("convT", 256, 128, 4, 2, 1, True, "relu"),    # -> 128x16x16
        Layer("convT", 128, 64, 4, 2, 1, True, "relu"),     # -> 64x32x32
        Layer("convT", 64, 3, 4, 2, 1, False, "tanh"),      # -> 3x64x64
    ),
    D=(
        Layer("conv", 3, 64, 4, 2, 1, False, "lrelu"),      # -> 64x32x32
        Layer("conv", 64, 128, 4, 2, 1, True, "lrelu"),     # -> 128x16x16
        Layer("conv", 128, 256, 4, 2, 1, True, "lrelu"),    # -> 256x8x8
        Layer("conv", 256, 512, 4, 2, 1, True, "lrelu"),    # -> 512x4x4
        Layer("conv", 512, 1, 4, 1, 0, False, None),        # -> 1x1x1 logit
    ),
)

DCGAN28 = Model(
    name="dcgan28", nz=100, channels=1, image_size=28,
    G=(
        Layer("convT", 100, 256, 7, 1, 0, True, "relu"),    # -> 256x7x7
        Layer("convT", 256, 128, 4, 2, 1, True, "relu"),    # -> 128x14x14
        Layer("convT", 128, 1, 4, 2, 1, False, "tanh"),     # -> 1x28x28
    ),
    D=(
        Layer("conv", 1, 64, 4, 2, 1, False, "lrelu"),      # -> 64x14x14
        Layer("conv", 64, 128, 4, 2, 1, True, "lrelu"),     # -> 128x7x7
        Layer("conv", 128, 1, 7, 1, 0, False, None),        # -> 1x1x1 logit
    ),
)

MODELS = {m.name: m for m in (DCGAN64, DCGAN28)}


# --------------------------------------------------------------------------
# Analytic FLOP count
# --------------------------------------------------------------------------

def out_size(layer: Layer, h: int) -> int:
    if layer.kind == "conv":
        return (h + 2 * layer.p - layer.k) // layer.s + 1
    return (h - 1) * layer.s - 2 * layer.p + layer.k  # transposed conv


def layer_macs(net: Tuple[Layer, ...], h_in: int) -> List[Tuple[Layer, int, int, int]]:
    """Per-layer forward MACs for ONE image: [(layer, h_in, h_out, macs)].

    conv : MACs = Cout * Hout * Wout * Cin * k * k
    convT: MACs = Cin  * Hin  * Win  * Cout * k * k  (every input pixel is
           scattered to a k x k window of every output channel; this is the
           GEMM size of the usual col2im implementation, cropped padding
           included).
    """
    rows = []
    h = h_in
    for L in net:
        ho = out_size(L, h)
        if L.kind == "conv":
            macs = L.cout * ho * ho * L.cin * L.k * L.k
        else:
            macs = L.cin * h * h * L.cout * L.k * L.k
        rows.append((L, h, ho, macs))
        h = ho
    return rows


def step_flops_per_image(model: Model, d_weight_grads_in_g_step: bool = True) -> dict:
    """FLOPs of one pytorch/examples-style DCGAN training step, per image.

    Rules: forward = 2*MACs.  Backward of a layer = 1x forward for its weight
    gradient plus 1x forward for its data (input) gradient; the data gradient
    is skipped when the layer's input needs no gradient (the first layer of a
    network whose input is a constant / detached tensor).  BN, activations,
    losses and Adam are ignored.

    What one step computes (Fx = forward FLOPs of net x, Fx1 = of its first layer):
      G forward once                                   F_G
      D forward 3x (real, fake.detach(), fake)         3 F_D
      D step, backward on real:  weights + data(2..)   2 F_D - F_D1
      D step, backward on fake:  weights + data(2..)   2 F_D - F_D1
      G step, backward through D: data into G (all)    F_D
                                  D weight grads       F_D   (only if d_weight_grads_in_g_step)
      G step, backward of G: weights + data(2..)       2 F_G - F_G1

    PyTorch (pytorch/examples does not freeze D) computes D's weight
    gradients in the G step too -> d_weight_grads_in_g_step=True.
    TF's tape.gradient(g_loss, G.trainable_variables) only builds gradient
    ops on paths to G's variables -> d_weight_grads_in_g_step=False.
    """
    g_rows = layer_macs(model.G, 1)               # G input is (nz, 1, 1)
    d_rows = layer_macs(model.D, model.image_size)
    assert g_rows[-1][2] == model.image_size and g_rows[-1][0].cout == model.channels
    assert d_rows[-1][2] == 1 and d_rows[-1][0].cout == 1

    FG = 2 * sum(r[3] for r in g_rows)
    FG1 = 2 * g_rows[0][3]
    FD = 2 * sum(r[3] for r in d_rows)
    FD1 = 2 * d_rows[0][3]

    parts = {
        "G_forward": FG,
        "D_forward_x3": 3 * FD,
        "D_step_backward_real": 2 * FD - FD1,
        "D_step_backward_fake": 2 * FD - FD1,
        "G_step_D_data_grads": FD,
        "G_step_D_weight_grads": FD if d_weight_grads_in_g_step else 0,
        "G_step_G_backward": 2 * FG - FG1,
    }
    parts["total"] = sum(parts.values())
    parts["G_forward_per_image"] = FG
    parts["D_forward_per_image"] = FD
    return parts


def gflop_per_step(model: Model, batch_size: int, d_weight_grads_in_g_step: bool = True) -> float:
    return step_flops_per_image(model, d_weight_grads_in_g_step)["total"] * batch_size / 1e9


def describe(model: Model) -> str:
    lines = [f"{model.name}: nz={model.nz} channels={model.channels} image={model.image_size}"]
    for net_name, net, h0 in (("G", model.G, 1), ("D", model.D, model.image_size)):
        for L, hi, ho, macs in layer_macs(net, h0):
            lines.append(f"  {net_name} {L.kind:5s} {L.cin:4d}->{L.cout:4d} k{L.k} s{L.s} p{L.p} "
                         f"{hi:3d}->{ho:3d}  fwd {2 * macs / 1e6:8.2f} MFLOP/img")
    for flag, who in ((True, "PyTorch (D weight grads in G step)"),
                      (False, "TF (no D weight grads in G step)")):
        t = step_flops_per_image(model, flag)["total"]
        lines.append(f"  train step {who}: {t / 1e9:.4f} GFLOP/image")
    return "\n".join(lines)


if __name__ == "__main__":
    for m in MODELS.values():
        print(describe(m))
