"""The README's "a PyTorch model?" example: a user's PyTorch classifier for Fashion-MNIST, trained the usual
PyTorch way (pixels 0-1 normalised outside the model by a torchvision-style Normalize, logits output), once
normally and once with PGD adversarial training, exported to ONNX. Written next to the two .onnx files:
PyTorch's own logits on the 1000 embedded test images, and PyTorch's own PGD attack on them (10 steps, no
random start), so the import and this suite's PGD can both be checked against PyTorch.

  python3 -m venv /tmp/tvenv && /tmp/tvenv/bin/pip install torch onnx onnxscript
  /tmp/tvenv/bin/python scripts/torch_fmnist_example.py reports/readme-torch
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

out = sys.argv[1] if len(sys.argv) > 1 else "reports/readme-torch"
full = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
subset = os.path.join(os.path.dirname(__file__), "..", "data", "fashion-mnist-subset")
MEAN, STD = 0.2860, 0.3530  # the user's transforms.Normalize((0.2860,), (0.3530,)) on 0-1 pixels
EPOCHS = int(os.environ.get("EPOCHS", "3"))
TRAIN_EPS, TRAIN_STEPS = 8 / 255, 5


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(path):
    return torch.from_numpy(idx(path).astype("float32") / 255).unsqueeze(1)  # N, 1, 28, 28 in [0, 1]


def labels(path):
    return torch.from_numpy(idx(path).astype("int64"))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = Block(16, 32, 2)
        self.layer2 = Block(32, 64, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.drop(torch.flatten(x, 1)))


def normalize(x):
    return (x - MEAN) / STD


def pgd(model, x, y, eps, steps, step_size=None, random_start=True, gen=None):
    """L-inf PGD on the cross-entropy of the logits, pixels 0-1, normalisation applied inside the forward."""
    step_size = step_size or 2.5 * eps / steps
    adv = x.clone()
    if random_start:
        adv = (adv + torch.empty_like(x).uniform_(-eps, eps, generator=gen)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(normalize(adv)), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + step_size * grad.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def train(adversarial, x_train, y_train, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for epoch in range(EPOCHS):
        t0 = time.time()
        order = torch.randperm(len(x_train), generator=gen)
        model.train()
        for i in range(0, len(order), 128):
            b = order[i: i + 128]
            x, y = x_train[b], y_train[b]
            if adversarial:
                model.eval()  # craft with the running statistics, as most PGD-AT code does after warm-up
                x = pgd(model, x, y, TRAIN_EPS, TRAIN_STEPS, gen=gen)
                model.train()
            loss = F.cross_entropy(model(normalize(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"{'pgd-at' if adversarial else 'standard'} epoch {epoch + 1}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    return model.eval()


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(normalize(x)).argmax(1) == y).float().mean().item()


def main():
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    os.makedirs(out, exist_ok=True)
    x_train, y_train = images(os.path.join(full, "train-images-idx3-ubyte.gz")), labels(os.path.join(full, "train-labels-idx1-ubyte.gz"))
    x_test, y_test = images(os.path.join(full, "t10k-images-idx3-ubyte.gz")), labels(os.path.join(full, "t10k-labels-idx1-ubyte.gz"))
    x_sub, y_sub = images(os.path.join(subset, "t10k-images-idx3-ubyte.gz")), labels(os.path.join(subset, "t10k-labels-idx1-ubyte.gz"))
    summary = {"torch": torch.__version__, "epochs": EPOCHS, "normalize": {"mean": MEAN, "std": STD}, "models": {}}
    for name, adversarial in [("fmnist-resnet", False), ("fmnist-resnet-pgdat", True)]:
        t0 = time.time()
        model = train(adversarial, x_train, y_train, seed=0)
        took = time.time() - t0
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), os.path.join(out, f"{name}.onnx"), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        with torch.no_grad():
            logits = model(normalize(x_sub))
        # PyTorch's own PGD on the embedded images: 10 steps, step 2.5*eps/10, no random start (deterministic).
        pgd_correct = {}
        for eps_label, eps in [("4/255", 4 / 255), ("8/255", 8 / 255)]:
            adv = torch.cat([pgd(model, x_sub[i: i + 250], y_sub[i: i + 250], eps, 10, random_start=False) for i in range(0, len(x_sub), 250)])
            with torch.no_grad():
                pgd_correct[eps_label] = (model(normalize(adv)).argmax(1) == y_sub).int().tolist()
        summary["models"][name] = {
            "adversarial_training": f"PGD-{TRAIN_STEPS} at eps {TRAIN_EPS:.6f} (8/255)" if adversarial else None,
            "train_seconds": round(took),
            "test_accuracy_10000": accuracy(model, x_test, y_test),
            "logits_embedded_1000": [[round(v, 6) for v in row] for row in logits.tolist()],
            "pgd10_no_random_start_correct": pgd_correct,
        }
        print(name, "test accuracy", summary["models"][name]["test_accuracy_10000"], {k: sum(v) / len(v) for k, v in pgd_correct.items()}, flush=True)
    with open(os.path.join(out, "torch-results.json"), "w") as f:
        json.dump(summary, f)
        f.write("\n")


if __name__ == "__main__":
    main()
