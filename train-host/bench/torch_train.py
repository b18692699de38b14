"""PyTorch's training speed for a cifhe architecture, for `train-host bench-train --torch PYTHON`.

Reads the architecture as JSON (the layer list cifhe trains, so both sides build the same network)
and times float training steps as cifhe's `train` runs them: batch of 3x32x32 images, cross-entropy
with label smoothing, Adam. With `--bf16`, the forward runs under bfloat16 autocast (oneDNN's bf16
kernels, fast on CPUs with AMX or AVX-512 BF16). Prints one JSON object with images per second.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def build(layers, batch_norm):
    mods, c, hw = [], 3, 32
    for layer in layers:
        kind = layer["kind"]
        if kind == "conv":
            mods.append(nn.Conv2d(c, layer["out"], layer["k"], layer["stride"], layer["pad"]))
            if batch_norm:
                mods.append(nn.BatchNorm2d(layer["out"]))
            c = layer["out"]
            hw = (hw + 2 * layer["pad"] - layer["k"]) // layer["stride"] + 1
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind == "avgpool":
            mods.append(nn.AvgPool2d(layer["k"], layer["stride"]))
            hw = (hw - layer["k"]) // layer["stride"] + 1
        elif kind == "linear":
            mods += [nn.Flatten(), nn.Linear(c * hw * hw, layer["out"])]
        else:
            raise SystemExit(f"unknown layer kind {kind!r}")
    return nn.Sequential(*mods)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", required=True, help="JSON list of layers")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--batch-norm", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    layers = json.loads(a.layers)
    net = build(layers, a.batch_norm)
    classes = layers[-1]["out"]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=a.smoothing)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, classes, (a.batch,))
    start = None
    for s in range(a.steps + 1):
        if s == 1:
            start = time.perf_counter()
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_second": a.steps * a.batch / seconds, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
