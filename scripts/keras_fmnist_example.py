"""The README's "your own model" example: a user's Keras 3 classifier for Fashion-MNIST, trained the usual
Keras way (pixels 0-255 normalised outside the model, softmax output), saved as a .keras file, with
Keras's own predictions on the embedded test subset so the imported model can be checked against them.

  python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras torch h5py
  KERAS_BACKEND=torch /tmp/kvenv/bin/python scripts/keras_fmnist_example.py reports/readme-keras
"""
import gzip
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "reports/readme-keras"
full = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
subset = os.path.join(os.path.dirname(__file__), "..", "data", "fashion-mnist-subset")
MEAN, STD = 72.94, 90.02  # the user's pipeline: (pixels 0-255 - MEAN) / STD


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


keras.utils.set_random_seed(0)
x_train = idx(os.path.join(full, "train-images-idx3-ubyte.gz")).astype("float32")[..., None]
y_train = idx(os.path.join(full, "train-labels-idx1-ubyte.gz")).astype("int64")
x_test = idx(os.path.join(full, "t10k-images-idx3-ubyte.gz")).astype("float32")[..., None]
y_test = idx(os.path.join(full, "t10k-labels-idx1-ubyte.gz")).astype("int64")
norm = lambda x: (x - MEAN) / STD  # noqa: E731

model = keras.Sequential(
    [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(10, activation="softmax"),
    ],
    name="fmnist_cnn",
)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(norm(x_train), y_train, batch_size=128, epochs=4, verbose=2)
test_acc = float(model.evaluate(norm(x_test), y_test, verbose=0)[1])

x_sub = idx(os.path.join(subset, "t10k-images-idx3-ubyte.gz")).astype("float32")[..., None]
y_sub = idx(os.path.join(subset, "t10k-labels-idx1-ubyte.gz")).astype("int64")
p_sub = model.predict(norm(x_sub), verbose=0)
os.makedirs(out, exist_ok=True)
model.save(os.path.join(out, "fmnist-cnn.keras"))
with open(os.path.join(out, "keras-predictions.json"), "w") as f:
    json.dump(
        {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "preprocessing": {"inputScale": 255, "mean": MEAN, "std": STD},
            "fullTestAccuracy": test_acc,
            "subset": "data/fashion-mnist-subset t10k (the fashion-mnist-embedded test split, in file order)",
            "subsetAccuracy": float((p_sub.argmax(1) == y_sub).mean()),
            "subsetPredictions": p_sub.argmax(1).tolist(),
            "subsetProbabilities": np.round(p_sub.astype(np.float64), 6).tolist(),
        },
        f,
    )
print("full test accuracy", test_acc, "subset accuracy", float((p_sub.argmax(1) == y_sub).mean()))
