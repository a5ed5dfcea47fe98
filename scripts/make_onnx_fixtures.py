"""Write the ONNX fixtures of test/io/onnx.test.ts: small PyTorch models exported to ONNX by both
of PyTorch's exporters, with the outputs PyTorch gives on fixed inputs (checked against
onnxruntime). Run once, results are committed:

    python3 -m venv /tmp/ovenv && /tmp/ovenv/bin/pip install torch onnx onnxruntime onnxscript
    /tmp/ovenv/bin/python scripts/make_onnx_fixtures.py test/fixtures/onnx
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F


def randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.25)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        o = F.leaky_relu(self.bn1(x), 0.1)
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (self.shortcut(o) if self.shortcut is not None else x)


class PreAct(nn.Module):
    """RobustBench-style: normalisation buffers inside, pre-activation blocks, avg-pool, view, linear."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mu", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.block1 = PreActBlock(8, 8, 1)
        self.block2 = PreActBlock(8, 16, 2)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = (x - self.mu) / self.sigma
        x = self.block2(self.block1(self.conv(x)))
        x = F.avg_pool2d(F.relu(self.bn(x)), 8)
        return self.fc(x.view(x.size(0), -1))


class Mixed(nn.Module):
    """Padding TF's 'same' cannot express, max-pool padding, grouped and depthwise convs, ReLU6,
    concatenation, a flatten over 2x2 positions, and a BatchNorm1d head with dropout."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)          # 20 -> 10, pads 1/1 (TF "same" would pad 0/1)
        self.pool = nn.MaxPool2d(3, 2, 1)             # 10 -> 5, pads 1/1 with -inf (TF "same": 0/1)
        self.grouped = nn.Conv2d(8, 12, 3, 1, 1, groups=2, bias=False)
        self.depthwise = nn.Conv2d(12, 24, 3, 2, 1, groups=12)  # multiplier 2, 5 -> 3
        self.point = nn.Conv2d(8, 4, 1)
        self.bn = nn.BatchNorm2d(28)
        self.fc1 = nn.Linear(28 * 2 * 2, 32)
        self.bn1d = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(32, 7)

    def forward(self, x):
        x = self.pool(self.stem(x))                   # before any ReLU: -inf and zero padding differ
        a = F.relu6(self.depthwise(self.grouped(x)))
        b = F.avg_pool2d(self.point(x), 3, 2, 1)      # count_include_pad: zeros count
        x = F.relu(self.bn(torch.cat([a, b], dim=1)))
        x = F.max_pool2d(x, 2, 1)                     # 3 -> 2
        x = torch.flatten(x, 1)
        return self.fc2(self.drop(F.relu(self.bn1d(self.fc1(x)))))


class SqueezeExcite(nn.Module):
    """Explicit F.pad, global average pooling, a squeeze-and-excitation gate (sigmoid, broadcast
    multiply), a mean over H and W, and a softmax output (the import removes it)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 5, 1, 0)
        self.se1 = nn.Conv2d(16, 4, 1)
        self.se2 = nn.Conv2d(4, 16, 1)
        self.conv2 = nn.Conv2d(16, 16, 3, 2, 1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = F.elu(self.conv1(F.pad(x, (2, 1, 2, 1))))
        g = torch.sigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(x, 1)))))
        x = torch.tanh(self.conv2(x * g)) * 2.5 + 0.5
        return torch.softmax(self.fc(x.mean(dim=(2, 3))), dim=1)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2- and SqueezeNet-style parts: torch.chunk on channels, a channel shuffle (view,
    transpose, view), max pooling with ceil_mode adding a partial window, GELU and Hardswish."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)  # 10 -> 5 (floor mode: 4)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.GELU(), nn.Conv2d(4, 4, 3, 1, 1, groups=4), nn.Hardswish())
        self.head = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6 * 5 * 5, 4)

    def forward(self, x):
        x = self.pool(self.stem(x))
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, self.branch(b)], dim=1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(torch.flatten(F.hardswish(self.head(x)), 1))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(20261128)
    cases = [
        ("preact.onnx", PreAct, (3, 16, 16), dict(dynamo=False, opset_version=13)),
        ("mixed.onnx", Mixed, (3, 20, 20), dict(dynamo=True)),
        ("squeeze_excite.onnx", SqueezeExcite, (3, 12, 12), dict(dynamo=False, opset_version=17)),
        ("shuffle_unit.onnx", ShuffleUnit, (3, 10, 10), dict(dynamo=False, opset_version=17)),
        ("shuffle_unit_dynamo.onnx", ShuffleUnit, (3, 10, 10), dict(dynamo=True)),
    ]
    expected = {}
    for name, cls, (c, h, w), export_args in cases:
        torch.manual_seed(len(expected))
        model = cls()
        randomise_bn(model, gen)
        model.eval()
        # Pixels k/255 as an 8-bit image gives them, so the JSON holds them exactly as integers.
        x = torch.randint(0, 256, (4, c, h, w), generator=gen).float() / 255
        with torch.no_grad():
            y = model(x)
        # Input gradient of a fixed linear read-out of the outputs: checks the converted model's backward pass.
        readout = torch.randn(y.shape, generator=gen)
        xg = x.clone().requires_grad_(True)
        (model(xg) * readout).sum().backward()
        grad = xg.grad.permute(0, 2, 3, 1).reshape(-1)
        torch.onnx.export(model, (x[:1],), str(out / name), input_names=["pixels"], output_names=["out"],
                          dynamic_axes={"pixels": {0: "batch"}, "out": {0: "batch"}} if not export_args.get("dynamo") else None,
                          dynamic_shapes=({0: torch.export.Dim("batch")},) if export_args.get("dynamo") else None,
                          **export_args)
        session = ort.InferenceSession(str(out / name))
        y_ort = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        gap = float(np.abs(y_ort - y.numpy()).max())
        assert gap < 1e-5, f"{name}: onnxruntime differs from PyTorch by {gap}"
        expected[name] = {
            "input_nhwc_shape": [4, h, w, c],
            "input_nhwc_255": [round(float(v) * 255) for v in x.permute(0, 2, 3, 1).reshape(-1).tolist()],
            "output": [[float(v) for v in row] for row in y.tolist()],
            "readout": [[float(v) for v in row] for row in readout.tolist()],
            "grad_nhwc": [float(f"{v:.8g}") for v in grad.tolist()],
            "onnxruntime_max_abs_diff": gap,
            "torch": torch.__version__,
            "exporter": "dynamo" if export_args.get("dynamo") else f"torchscript, opset {export_args['opset_version']}",
        }
        print(name, "ok", y.shape, "ort gap", gap)
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/onnx"))
