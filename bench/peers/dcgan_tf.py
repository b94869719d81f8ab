#!/usr/bin/env python3
"""TensorFlow/Keras peer: times one full DCGAN training step, same semantics as
pytorch/examples dcgan/main.py (and dcgan_torch.py):

  fake = G(z)                       (G forward once, recorded on the G tape)
  D step: D(real) -> BCE vs 1, D(stop_gradient(fake)) -> BCE vs 0,
          gradients w.r.t. D's variables, Adam step on D.
  G step: D(fake) with the *updated* D (same fake batch, not detached) -> BCE vs 1,
          gradients w.r.t. G's variables, Adam step on G.

tf.keras models (channels_last / NHWC: TF's CPU conv kernels only support NHWC),
Conv2DTranspose/Conv2D with padding 'valid' (k4 s1 p0 on 1x1, k7 s1 p0) or
'same' (k4 s2 p1: identical output size and symmetric 1-pixel padding),
BinaryCrossentropy(from_logits=True), Adam(2e-4, beta_1=0.5), the whole step
in one @tf.function.

TF fixes its thread pools at start-up, so inter-op parallelism 1 and 2 are
timed in two child processes (unless --inter-op is given) and the faster is
reported, with both medians under "variants".  Prints ONE JSON line on stdout.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcgan_spec import MODELS, gflop_per_step, step_flops_per_image  # noqa: E402


NOISE = re.compile(r"^(WARNING: All log messages before absl|I0000 |To enable the following "
                   r"instructions|.*cpu_feature_guard|.*oneDNN custom operations)")


def build(keras, layers_spec, input_shape, name):
    from keras import layers, initializers
    w_init = initializers.RandomNormal(mean=0.0, stddev=0.02, seed=None)
    x = inp = keras.Input(shape=input_shape)
    for L in layers_spec:
        if L.p == 0:
            padding = "valid"
        elif L.k == 4 and L.s == 2 and L.p == 1:
            padding = "same"
        else:
            raise ValueError(f"no TF padding mapping for {L}")
        Conv = layers.Conv2DTranspose if L.kind == "convT" else layers.Conv2D
        x = Conv(L.cout, L.k, strides=L.s, padding=padding, use_bias=False,
                 kernel_initializer=w_init)(x)
        if L.bn:
            # Keras momentum is the running-average decay: 0.9 == PyTorch momentum 0.1
            x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                          gamma_initializer=initializers.RandomNormal(1.0, 0.02),
                                          beta_initializer="zeros")(x)
        if L.act == "relu":
            x = layers.ReLU()(x)
        elif L.act == "lrelu":
            try:
                x = layers.LeakyReLU(negative_slope=0.2)(x)   # Keras 3
            except TypeError:
                x = layers.LeakyReLU(alpha=0.2)(x)            # Keras 2
        elif L.act == "tanh":
            x = layers.Activation("tanh")(x)
    return keras.Model(inp, x, name=name)


def child(args):
    """Time the step in this process with the given inter-op setting; return a dict."""
    import numpy as np
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    keras = tf.keras
    try:
        import keras as keras_pkg  # Keras 3 ships as its own package
        keras = keras_pkg
    except ImportError:
        pass
    keras.utils.set_random_seed(1234)

    spec = MODELS[args.model]
    B = args.batch_size
    G = build(keras, spec.G, (1, 1, spec.nz), "G")
    D = build(keras, spec.D, (spec.image_size, spec.image_size, spec.channels), "D")
    assert tuple(G.output_shape[1:]) == (spec.image_size, spec.image_size, spec.channels), G.output_shape
    assert tuple(D.output_shape[1:]) == (1, 1, 1), D.output_shape

    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    optD = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
    optG = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
    if hasattr(optD, "build"):
        optD.build(D.trainable_variables)
        optG.build(G.trainable_variables)

    rng = np.random.default_rng(1234)
    real = tf.constant(rng.uniform(-1, 1, (B, spec.image_size, spec.image_size, spec.channels)),
                       dtype=tf.float32)
    ones = tf.ones((B, 1, 1, 1))
    zeros = tf.zeros((B, 1, 1, 1))

    @tf.function
    def train_step(real):
        noise = tf.random.normal((B, 1, 1, spec.nz))
        with tf.GradientTape() as g_tape:
            fake = G(noise, training=True)
            # D step (fake detached: no gradient into G)
            with tf.GradientTape() as d_tape:
                err_real = bce(ones, D(real, training=True))
                err_fake = bce(zeros, D(tf.stop_gradient(fake), training=True))
                err_d = err_real + err_fake
            d_grads = d_tape.gradient(err_d, D.trainable_variables)
            assert all(g is not None for g in d_grads)
            optD.apply_gradients(zip(d_grads, D.trainable_variables))
            # G step: same fake batch through the updated D
            err_g = bce(ones, D(fake, training=True))
        g_grads = g_tape.gradient(err_g, G.trainable_variables)
        assert all(g is not None for g in g_grads)
        optG.apply_gradients(zip(g_grads, G.trainable_variables))
        return err_d, err_g

    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        err_d, err_g = train_step(real)
        loss = float(err_d.numpy()) + float(err_g.numpy())   # sync
        assert np.isfinite(loss), loss
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt * 1e3)
    return {"times": times, "tf_version": tf.__version__, "keras_version": keras.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default(on)")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="dcgan64")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads")
    ap.add_argument("--inter-op", type=int, default=None,
                    help="inter-op threads; default: time 1 and 2 in child processes, report the faster")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(child(args)), flush=True)
        return

    spec = MODELS[args.model]
    # tape.gradient(err_g, G.trainable_variables) builds no gradient ops for D's
    # weights in the G step (unlike PyTorch, where D is not frozen).
    per_img = step_flops_per_image(spec, d_weight_grads_in_g_step=False)["total"] / 1e9
    gflop = gflop_per_step(spec, args.batch_size, d_weight_grads_in_g_step=False)
    print(f"[dcgan_tf] {spec.name}: {per_img:.4f} GFLOP/image/step "
          f"(no D weight grads in G step), {gflop:.2f} GFLOP/step at batch {args.batch_size}",
          file=sys.stderr)

    inter_ops = [args.inter_op] if args.inter_op else [1, 2]
    results = {}
    meta = {}
    for n in inter_ops:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--model", args.model,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--threads", str(args.threads), "--inter-op", str(n)]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # TF_CPP_MIN_LOG_LEVEL does not silence absl's pre-init INFO lines; drop them.
        for line in p.stderr.splitlines():
            if not NOISE.search(line):
                print(line, file=sys.stderr)
        if p.returncode != 0:
            sys.exit(f"[dcgan_tf] child (inter-op {n}) failed with rc {p.returncode}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        results[n] = r["times"]
        meta = r
        print(f"[dcgan_tf] {spec.name} inter-op {n}: median {statistics.median(r['times']):.1f} ms/step "
              f"(min {min(r['times']):.1f})",
              file=sys.stderr)

    best = min(results, key=lambda n: statistics.median(results[n]))
    times = results[best]
    med = statistics.median(times)
    out = {
        "framework": "tensorflow",
        "model": spec.name,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "step_ms_median": round(med, 3),
        "step_ms_all": [round(t, 3) for t in times],
        "step_ms_min": round(min(times), 3),
        "images_per_s": round(args.batch_size / (med / 1e3), 2),
        "gflop_per_step": round(gflop, 4),
        "gflops": round(gflop / (med / 1e3), 2),
        "memory_format": "channels_last",
        "inter_op_threads": best,
        "variants": {f"inter_op_{n}": {"step_ms_median": round(statistics.median(t), 3),
                                       "step_ms_min": round(min(t), 3)}
                     for n, t in results.items()},
        "gflop_per_image": round(per_img, 4),
        "version": meta.get("tf_version"),
        "keras_version": meta.get("keras_version"),
        "onednn": meta.get("onednn"),
        "steps": args.steps,
        "warmup": args.warmup,
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
