"""Write the Keras 3 fixtures of test/io/keras.test.ts: small .keras files and Keras's own outputs.

Run with Keras 3 on any backend (here: KERAS_BACKEND=torch), e.g.
  python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras torch h5py
  KERAS_BACKEND=torch /tmp/kvenv/bin/python scripts/make_keras_fixtures.py test/fixtures/keras
The images are ((i * 7919) mod 10007) / 10007 for flat index i, so the test rebuilds them exactly.
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
import numpy as np  # noqa: E402

out_dir = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/keras"
os.makedirs(out_dir, exist_ok=True)
keras.utils.set_random_seed(0)


def images(n, shape):
    size = n * int(np.prod(shape))
    i = np.arange(size, dtype=np.int64)
    return (((i * 7919) % 10007) / 10007).astype(np.float32).reshape((n, *shape))


def random_bn_statistics(model):
    """Non-trivial BatchNorm statistics, so a wrongly ordered weight shows."""
    rng = np.random.default_rng(1)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape), rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2.0, var.shape)])


def functional():
    inp = keras.Input((8, 8, 3))
    s = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(s)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.Conv2D(4, 1)(s)
    x = keras.layers.Add()([x, y])
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(5, activation="softmax")(x)
    return keras.Model(inp, out, name="resblock"), (8, 8, 3), 255.0


def sequential():
    m = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(6, 3, strides=2, activation="relu"),
            keras.layers.DepthwiseConv2D(3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("tanh"),
            keras.layers.AveragePooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(4),
            keras.layers.Softmax(),
        ],
        name="plain",
    )
    return m, (12, 12, 1), 1.0


def nested():
    base_in = keras.Input((6, 6, 3))
    b = keras.layers.Conv2D(5, 3, activation="relu", name="base_conv")(base_in)
    b = keras.layers.BatchNormalization(name="base_bn")(b)
    b = keras.layers.GlobalAveragePooling2D(name="base_gap")(b)
    base = keras.Model(base_in, b, name="backbone")
    inp = keras.Input((6, 6, 3))
    x = base(inp)
    out = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="transfer"), (6, 6, 3), 1.0


expected = {}
for name, make in [("functional", functional), ("sequential", sequential), ("nested", nested)]:
    model, shape, scale = make()
    random_bn_statistics(model)
    x = images(4, shape) * scale
    y = model.predict(x, verbose=0)
    model.save(os.path.join(out_dir, f"{name}.keras"))
    expected[name] = {"inputShape": list(shape), "inputScale": scale, "outputs": np.asarray(y, dtype=np.float64).round(7).tolist()}
with open(os.path.join(out_dir, "expected.json"), "w") as f:
    json.dump({"keras": keras.__version__, "backend": keras.backend.backend(), "models": expected}, f, indent=1)
print("wrote", sorted(os.listdir(out_dir)))
