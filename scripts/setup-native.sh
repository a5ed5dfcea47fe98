#!/usr/bin/env bash
# Makes the native TensorFlow backend (@tensorflow/tfjs-node) usable, even offline.
#
# @tensorflow/tfjs-node's own install script downloads libtensorflow from Google's
# storage, which firewalled machines cannot reach. This script:
#   1. exits at once if the native backend already loads (idempotent, fast);
#   2. tries the package's normal install (download of libtensorflow);
#   3. falls back to the TensorFlow C library shipped inside the `tensorflow-cpu`
#      Python wheel (TF >= 2.12 wheels carry the C API), fetched with pip from
#      whatever index pip is configured for, and builds the addon from source.
# Where nothing works it says why and exits non-zero; the suite then runs on wasm.
#
# Environment:
#   TF_WHEEL=/path/to.whl        use this wheel instead of asking pip
#   TF_WHEEL_VERSION=2.21.0      tensorflow-cpu version to fetch (default 2.21.0)
#   JPEGDL_CACHE=dir             where the wheel is kept (default ~/.cache/jpegdl-robust)
#   JPEGDL_SKIP_NORMAL_INSTALL=1 skip step 2 (saves its time-out on offline machines)
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/node_modules/@tensorflow/tfjs-node"
version="${TF_WHEEL_VERSION:-2.21.0}"
cache="${JPEGDL_CACHE:-$HOME/.cache/jpegdl-robust}"

say() { printf 'setup:native: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

probe() {
  (cd "$root" && node --input-type=module -e "
    const tf = await import('@tensorflow/tfjs-node');
    await tf.ready();
    if (tf.getBackend() !== 'tensorflow') throw new Error('backend is ' + tf.getBackend());
    console.log('native backend ready: tfjs-node ' + tf.version['tfjs-node'] + ', TensorFlow ' + tf.backend().binding.TF_Version);
  " 2>/dev/null)
}

[ -d "$pkg" ] || die "node_modules/@tensorflow/tfjs-node is missing: run 'npm ci' in $root first"
command -v node >/dev/null || die "node is not on PATH"

if probe; then exit 0; fi

if [ "${JPEGDL_SKIP_NORMAL_INSTALL:-0}" != 1 ]; then
  say "trying the package's normal install (downloads libtensorflow)"
  if (cd "$root" && timeout 300 npm rebuild @tensorflow/tfjs-node --ignore-scripts=false >/tmp/jpegdl-native-normal.log 2>&1) && probe; then
    exit 0
  fi
  say "normal install failed (log: /tmp/jpegdl-native-normal.log); using the tensorflow-cpu wheel"
  rm -rf "$pkg/deps"
fi

command -v python3 >/dev/null || die "python3 is needed to fetch/unpack the tensorflow-cpu wheel and is not on PATH"
wheel="${TF_WHEEL:-}"
if [ -z "$wheel" ]; then
  mkdir -p "$cache"
  wheel="$(ls "$cache"/tensorflow_cpu-"$version"-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$wheel" ]; then
    say "fetching tensorflow-cpu==$version with pip (about 270 MB)"
    python3 -m pip --version >/dev/null 2>&1 || die "pip is not available for python3 (install python3-pip)"
    python3 -m pip download --no-deps --retries 1 --timeout 30 "tensorflow-cpu==$version" -d "$cache" >/tmp/jpegdl-native-pip.log 2>&1 \
      || die "pip could not download tensorflow-cpu==$version (log: /tmp/jpegdl-native-pip.log); set TF_WHEEL to a local wheel"
    wheel="$(ls "$cache"/tensorflow_cpu-"$version"-*.whl 2>/dev/null | head -n1 || true)"
  fi
fi
[ -f "$wheel" ] || die "wheel not found: $wheel"
say "unpacking the TensorFlow C library from $(basename "$wheel")"

rm -rf "$pkg/deps"
mkdir -p "$pkg/deps/lib" "$pkg/deps/include"
python3 - "$wheel" "$pkg/deps" "$pkg/binding" <<'PY'
# Copy the two shared libraries, and the headers the binding's sources include,
# followed transitively inside the wheel (a few hundred KB instead of the whole tree).
import sys, zipfile, os, re, shutil
wheel, deps, binding = sys.argv[1], sys.argv[2], sys.argv[3]
libs = ["tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"]
inc = "tensorflow/include/"
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for lib in libs:
        if lib not in names:
            sys.exit("the wheel lacks " + lib + " (TensorFlow >= 2.12 wheels ship it)")
        with z.open(lib) as src, open(os.path.join(deps, "lib", os.path.basename(lib)), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    todo = ["tensorflow/c/c_api.h", "tensorflow/c/eager/c_api.h"]
    for src in os.listdir(binding):
        with open(os.path.join(binding, src), "rb") as f:
            todo += [m.decode() for m in re.findall(rb'#include\s+"([^"]+)"', f.read())]
    seen = set()
    while todo:
        h = todo.pop()
        if h in seen:
            continue
        seen.add(h)
        if inc + h not in names:
            if h.startswith("tensorflow/c/"):
                sys.exit("the wheel lacks the header " + h)
            continue  # system or optional header
        data = z.read(inc + h)
        out = os.path.join(deps, "include", h)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(data)
        todo += [m.decode() for m in re.findall(rb'#include\s+"([^"]+)"', data)]
PY
(
  cd "$pkg/deps/lib"
  ln -sf libtensorflow_cc.so.2 libtensorflow.so
  ln -sf libtensorflow_cc.so.2 libtensorflow.so.2
  ln -sf libtensorflow_cc.so.2 libtensorflow.so.2.9.1
  ln -sf libtensorflow_framework.so.2 libtensorflow_framework.so
)
[ -f "$pkg/deps/include/tensorflow/c/c_api.h" ] || die "c_api.h missing from the wheel's headers"

say "building the tfjs-node addon from source (node-gyp)"
command -v g++ >/dev/null || die "g++ is needed to build the addon (apt-get install g++ make)"
(cd "$root" && npm rebuild @tensorflow/tfjs-node --ignore-scripts=false >/tmp/jpegdl-native-build.log 2>&1) \
  || die "building the addon failed (log: /tmp/jpegdl-native-build.log)"
probe || die "the addon built but the native backend does not load (log: /tmp/jpegdl-native-build.log)"
