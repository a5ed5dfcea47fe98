#!/usr/bin/env python3
"""PyTorch peer of `jpegdl-robust bench`: the same models (layer for layer, same
parameter count), batch, thread count and timing protocol as the tfjs side, so the
tfjs/PyTorch ratio compares frameworks, not models.

Prints one JSON object on stdout. Exit code 3 (and a JSON error) when torch cannot
be imported, so the caller can report 'skipped: torch not importable'.

--serve: answer JSON-lines requests on stdin, one per line,
  {"model": "resnet20", "kind": "train"|"attack", "channelsLast": bool, "foldBn": bool, "steps": n, "warmup": w}
("foldBn": attack step on the eval model with conv+BN folded by torch.fx's fuse, the
counterpart of the BN folding the tfjs attacks use)
with {"seconds": [per-step seconds of each step]} so the caller can interleave tfjs
and PyTorch repeats (fair on a machine whose load changes).
"""
import argparse
import json
import statistics
import sys
import time


MODELS = ("small_cnn", "resnet20")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", default="small_cnn,resnet20", help="comma-separated: small_cnn, resnet20")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=32, help="input height = width (3 channels)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    p.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    p.add_argument("--params-only", action="store_true", help="print parameter counts and exit")
    p.add_argument("--serve", action="store_true", help="answer JSON-lines timing requests on stdin")
    a = p.parse_args()
    for name in ("batch", "size", "classes", "threads", "repeats", "steps"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(a, name)}")
    if a.warmup < 0:
        p.error(f"--warmup must be >= 0, got {a.warmup}")
    for m in a.models.split(","):
        if m and m not in MODELS:
            p.error(f"unknown model '{m}' (expected one of {', '.join(MODELS)})")
    return a


def build(torch, name, classes):
    nn = torch.nn

    class Normalize(nn.Module):
        # The tfjs models normalise inside the model (mean 0, std 1 by default): same ops here.
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
            self.register_buffer("std", torch.ones(1, 3, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    def conv_bn_relu(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    if name == "small_cnn":
        # models/small_cnn.ts: 2 stages of 2 x (conv3x3 no bias, BN, ReLU), 2x2 max pool; fc128, ReLU, fc.
        layers = [Normalize()]
        cin = 3
        for width in (32, 64):
            layers += conv_bn_relu(cin, width) + conv_bn_relu(width, width) + [nn.MaxPool2d(2, 2)]
            cin = width
        layers += [nn.Flatten(), nn.LazyLinear(128), nn.ReLU(inplace=True), nn.Linear(128, classes)]
        return nn.Sequential(*layers)

    if name == "resnet20":
        # models/resnet_cifar.ts: stem conv 16 + 3 stages (16, 32, 64) x 3 BasicBlocks,
        # 1x1 conv + BN projection on stride/width change, global average pool, fc.
        class Block(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout)
                self.down = None
                if stride != 1 or cin != cout:
                    self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

            def forward(self, x):
                out = torch.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                return torch.relu(out + (x if self.down is None else self.down(x)))

        layers = [Normalize()] + conv_bn_relu(3, 16)
        cin = 16
        for stage, width in enumerate((16, 32, 64)):
            for b in range(3):
                layers.append(Block(cin, width, 2 if stage > 0 and b == 0 else 1))
                cin = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
        return nn.Sequential(*layers)

    raise SystemExit(f"bench_torch.py: unknown model '{name}' (expected small_cnn or resnet20)")


def time_steps(step, warmup, repeats, steps):
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        seconds.append((time.perf_counter() - t0) / steps)
    return seconds


def make_steps(torch, name, a, channels_last, fold_bn=False):
    """(train_step, attack_step, params) for one model and memory format (fold_bn: attack on a conv+BN-folded eval copy)."""
    F = torch.nn.functional
    torch.manual_seed(0)
    model = build(torch, name, a.classes)
    x = torch.rand(a.batch, 3, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))
    model(x[:1])  # materialise the lazy layer
    params = sum(p.numel() for p in model.parameters())
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    # As the tfjs side (JointTrainer): SGD momentum 0.9, coupled weight decay 5e-4, lr 0.01.
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    attack_model = model
    if fold_bn:
        from torch.fx.experimental.optimization import fuse

        attack_model = fuse(model.eval())

    def attack_step():
        # Forward + gradient w.r.t. the input only (what FGSM/PGD need each step).
        attack_model.eval()
        xa = x.detach().requires_grad_(True)
        loss = F.cross_entropy(attack_model(xa), y)
        (g,) = torch.autograd.grad(loss, xa)
        return g

    return train_step, attack_step, params


def bench_model(torch, name, a, channels_last):
    train_step, attack_step, params = make_steps(torch, name, a, channels_last)
    train = time_steps(train_step, a.warmup, a.repeats, a.steps)
    attack = time_steps(attack_step, a.warmup, a.repeats, a.steps)
    return {
        "model": name,
        "memoryFormat": "channels_last" if channels_last else "contiguous (NCHW)",
        "params": params,
        "trainStepSeconds": train,
        "attackStepSeconds": attack,
        "trainImagesPerSecond": a.batch / statistics.median(train),
        "attackImagesPerSecond": a.batch / statistics.median(attack),
    }


def main():
    a = parse_args()
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - any import failure means "no torch here"
        print(json.dumps({"error": f"torch not importable: {err}"}))
        return 3
    torch.set_num_threads(a.threads)
    models = [m for m in a.models.split(",") if m]
    out = {
        "torchVersion": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "batch": a.batch,
        "inputShape": [a.size, a.size, 3],
        "protocol": {"warmup": a.warmup, "repeats": a.repeats, "stepsPerRepeat": a.steps},
    }
    if a.serve:
        print(json.dumps(out), flush=True)
        cache = {}
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            key = (req["model"], bool(req.get("channelsLast")), bool(req.get("foldBn")))
            if key not in cache:
                cache[key] = make_steps(torch, key[0], a, key[1], key[2])
            train_step, attack_step, params = cache[key]
            step = train_step if req["kind"] == "train" else attack_step
            for _ in range(int(req.get("warmup", 0))):
                step()
            seconds = []
            for _ in range(int(req["steps"])):
                t0 = time.perf_counter()
                step()
                seconds.append(time.perf_counter() - t0)
            print(json.dumps({"seconds": seconds, "params": params}), flush=True)
        return 0
    if a.params_only:
        out["params"] = {}
        for m in models:
            net = build(torch, m, a.classes)
            net(torch.rand(1, 3, a.size, a.size))
            out["params"][m] = sum(p.numel() for p in net.parameters())
    else:
        out["results"] = [bench_model(torch, m, a, cl) for m in models for cl in (False, True)]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
