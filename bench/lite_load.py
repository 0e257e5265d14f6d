"""Loading an exported full DeconvNet in LiteRT: time and resident memory per way of loading (not a test).

For the full DeconvNet at 224x224 (trained-looking weights, ``bench/_weights.py``),
exported as float32 and float16 TFLite, each way of loading runs in its own
process and prints: seconds to load (interpreter + tensors + XNNPACK's weight
packing), seconds of the first invoke, the median invoke in ms, and the
resident memory once it has run, split into anonymous memory and file-backed
pages (which the kernel can drop and re-read, so they do not pin RAM):

* ``bytes``: ``keras_deconv.lite.LiteModel`` given the file's bytes, which is
  how it loaded files before this version;
* ``path``: ``LiteModel`` given the path (now the default in ``lite.load``):
  LiteRT memory-maps the file;
* ``weight cache, 1st`` / ``2nd``: ``LiteModel(path, weight_cache=FOLDER)``,
  which runs LiteRT's ``CompiledModel`` with an XNNPACK weight cache file: the
  first load packs the weights and writes the cache, later loads map it and
  never touch the file's weights.

Then it checks, on two small DeconvNets of the same architecture with
different weights, what happens when the second file is loaded with the
first one's cache: LiteRT alone (the cache path given directly) against
``keras_deconv.lite`` (caches keyed by the file).

About six minutes (most of it the two conversions).

    python bench/lite_load.py [--keep FOLDER]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _weights import trained_like  # noqa: E402

WAYS = ("bytes", "path", "weight cache, 1st", "weight cache, 2nd")


def child(way, path, cache):
    """Load ``path`` one way, run it; prints ``load_s first_s median_ms rss_mb anon_mb file_mb``."""
    from _memory import resident_mb
    from _timing import median_ms

    from keras_deconv.lite import LiteModel

    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    start = time.perf_counter()
    source = open(path, "rb").read() if way == "bytes" else path  # the old LiteModel read files into bytes
    model = LiteModel(source, num_threads=os.cpu_count(), weight_cache=cache if way.startswith("weight cache") else None)

    def run():
        model(images=x)

    loaded = time.perf_counter()
    run()
    first = time.perf_counter()
    milliseconds = median_ms(run, 5, warmup=0)
    rss, anon, file_backed = resident_mb()
    print(f"{loaded - start:.3f} {first - loaded:.3f} {milliseconds:.1f} {rss:.0f} {anon:.0f} {file_backed:.0f}")


def stale_cache_check():
    """Load model B with model A's XNNPACK weight cache: LiteRT alone, then keras_deconv.lite."""
    import tensorflow as tf
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.cpu_options import CpuOptions
    from ai_edge_litert.options import Options

    from keras_deconv import export
    from keras_deconv.lite import LiteModel, _litert_environment
    from keras_deconv.models import DeconvNet

    folder = tempfile.mkdtemp()
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    path, expected = os.path.join(folder, "model.tflite"), {}
    spec = [tf.TensorSpec(x.shape, tf.float32, name="images")]
    for name, seed in (("A", 0), ("B", 1)):
        model = trained_like(DeconvNet(num_classes=3, width=1 / 16, fc_units=32, fc_kernel_size=2,
                                       input_shape=(64, 64, 3)), seed=seed)
        model.set_weights([w + 0.01 * seed for w in model.get_weights()])  # different kernels too
        flatbuffers = expected.setdefault("files", {})
        flatbuffers[name] = export.to_tflite(model, input_signature=spec)
        expected[name] = export.run_tflite(flatbuffers[name], [x])[0]

    def verdict(scores):
        return next((name for name in "AB" if np.allclose(scores, expected[name], atol=1e-4)), "neither A nor B")

    def litert_alone(cache):
        options = Options(cpu_options=CpuOptions(xnnpack_weight_cache_path=cache))
        compiled = CompiledModel.from_file(path, environment=_litert_environment(), options=options)
        inputs, outputs = compiled.create_input_buffers(0), compiled.create_output_buffers(0)
        inputs[0].write(x)
        compiled.run_by_index(0, inputs, outputs)
        return outputs[0].read(expected["A"].size, np.float32).reshape(expected["A"].shape)

    results = {}
    for runner, load in (("LiteRT CompiledModel, cache path given", lambda: litert_alone(os.path.join(folder, "cache"))),
                         ("keras_deconv.lite.LiteModel(weight_cache=)",
                          lambda: LiteModel(path, weight_cache=os.path.join(folder, "caches"))(images=x)["Identity"])):
        for name in "AB":  # the same path: B replaces A, as a re-export does
            with open(path, "wb") as stream:
                stream.write(expected["files"][name])
            results[(runner, name)] = verdict(load())
    print("\nFile B (same architecture, other weights) loaded with file A's weight cache; whose outputs come out:")
    for runner in dict.fromkeys(runner for runner, _ in results):
        print(f"  {runner:44s} A -> {results[(runner, 'A')]}, then B -> {results[(runner, 'B')]}")
    shutil.rmtree(folder)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="folder for the exported files (reused when present)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.file, args.cache)

    from keras_deconv._platform import describe_cpu

    print(describe_cpu())
    folder = args.keep or tempfile.mkdtemp()
    os.makedirs(folder, exist_ok=True)
    files = {quantize: os.path.join(folder, f"deconvnet_{quantize}.tflite") for quantize in ("float32", "float16")}
    if not all(os.path.exists(path) for path in files.values()):
        from keras_deconv.export.tflite import _dense_tflite
        from keras_deconv.models import DeconvNet

        model = trained_like(DeconvNet(input_shape=(224, 224, 3)))
        for quantize, path in files.items():
            _dense_tflite(model, path, "none" if quantize == "float32" else quantize, "shapes", (224, 224))
        del model
    print("DeconvNet 224x224, LiteRT with XNNPACK, each row its own process; resident memory after running (MB)")
    print(f"{'file':22s} {'MB':>5s}  {'loaded as':18s} {'load s':>7s} {'1st run s':>9s} {'median ms':>9s}"
          f" {'RSS':>6s} {'anon':>6s} {'file':>6s}")
    here = os.path.abspath(__file__)
    for quantize, path in files.items():
        cache = tempfile.mkdtemp()
        for way in WAYS:
            command = [sys.executable, here, "--child", way, "--file", path, "--cache", cache]
            fields = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[-6:]
            load_s, first_s, ms, rss, anon, file_backed = (float(f) for f in fields)
            print(f"{os.path.basename(path):22s} {os.path.getsize(path) / 1e6:5.0f}  {way:18s} {load_s:7.2f} {first_s:9.2f}"
                  f" {ms:9.1f} {rss:6.0f} {anon:6.0f} {file_backed:6.0f}", flush=True)
        (cache_file,) = os.listdir(cache)
        print(f"{'':22s} {'':5s}  weight cache file: {os.path.getsize(os.path.join(cache, cache_file)) / 1e6:.0f} MB")
        shutil.rmtree(cache)
    stale_cache_check()


if __name__ == "__main__":
    main()
