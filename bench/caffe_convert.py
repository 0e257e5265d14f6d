"""Benchmark: convert a ~1 GB DeconvNet .caffemodel into Keras and save .weights.h5.

Usage:
    python bench/caffe_convert.py                    # synthetic V1 file in a temp dir
    python bench/caffe_convert.py path/to/DeconvNet_trainval_inference.caffemodel
    python bench/caffe_convert.py --keep-output      # keep the .weights.h5 next to the input

Without an argument it writes a synthetic full-size DeconvNet V1 file (the
exact layer names and blob shapes of ``DeconvNet_inference_deploy.json``,
1.007 GB) in a child process, so the writer's memory does not count here.
Then it builds ``keras_deconv.models.DeconvNet()``, runs
``load_caffemodel`` and ``model.save_weights`` (what ``convert_caffemodel``
does) and prints:

* wall time of the load (checksum + header pass + streaming pass) and of the save;
* RSS of the built model before loading (the baseline) and the peak RSS during
  the conversion, sampled every 5 ms from ``/proc/self/statm``, plus
  ``resource.getrusage`` ``ru_maxrss`` (the whole process's peak);
* both as multiples of the file size: the peak itself, and the peak minus the
  baseline (the conversion's own memory on top of the model).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

# The vendored official network (keras_deconv/caffe/nets/), by name.
_DEFAULT_SPEC = "DeconvNet_inference_deploy"


def _write(path, spec_path):
    from keras_deconv.caffe import load_net_spec, synthetic_layers_from_spec, write_caffemodel

    layers = synthetic_layers_from_spec(load_net_spec(spec_path), seed=0, dialect="v1", lazy=True)
    write_caffemodel(path, layers, dialect="v1", name="DeconvNet-synthetic")


def _rss_bytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _max_rss_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak if sys.platform == "darwin" else peak * 1024


class _PeakSampler:
    """Samples this process's RSS in a thread; ``peak`` is the largest value seen."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="an existing DeconvNet .caffemodel (kept)")
    parser.add_argument("--spec", default=_DEFAULT_SPEC, help="network spec (a vendored name or a JSON path) for the synthetic file")
    parser.add_argument("--keep-output", action="store_true", help="keep the .weights.h5")
    parser.add_argument("--_write-only", dest="write_only", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_only:
        _write(args.write_only, args.spec)
        return 0

    folder = tempfile.mkdtemp(prefix="caffe_convert_bench_")
    path = args.path
    if path is None:
        path = os.path.join(folder, "DeconvNet_synthetic.caffemodel")
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--spec", args.spec, "--_write-only", path], check=True)
        print(f"wrote {path} ({os.path.getsize(path) / 1e9:.3f} GB) in {time.perf_counter() - start:.1f} s")
    output = os.path.join(folder if not args.keep_output else os.path.dirname(os.path.abspath(path)), "DeconvNet.weights.h5")
    try:
        import keras

        from keras_deconv.caffe import load_caffemodel
        from keras_deconv.models import DeconvNet

        size = os.path.getsize(path)
        start = time.perf_counter()
        model = DeconvNet()
        build_s = time.perf_counter() - start
        baseline = _rss_bytes()
        weights_bytes = 4 * model.count_params()  # float32 variables
        print(f"model:       DeconvNet() built in {build_s:.1f} s, {model.count_params():,} parameters "
              f"({weights_bytes / 1e9:.3f} GB); RSS {baseline / 1e9:.3f} GB (baseline)")

        with _PeakSampler() as sampler:
            start = time.perf_counter()
            report = load_caffemodel(model, path)
            load_s = time.perf_counter() - start
            start = time.perf_counter()
            model.save_weights(output)
            save_s = time.perf_counter() - start
        peak = sampler.peak
        print(f"file:        {size / 1e9:.3f} GB, dialect {report['dialect']}, {len(report['loaded'])} layers, "
              f"{report['parameters']:,} parameters, sha256 {report['sha256'][:16]}...")
        print(f"load:        {load_s:.2f} s ({size / 1e9 / load_s:.2f} GB/s; checksum + header pass + streaming pass)")
        print(f"save:        {save_s:.2f} s ({os.path.getsize(output) / 1e9:.3f} GB .weights.h5)")
        print(f"total:       {load_s + save_s:.2f} s")
        print(f"peak RSS:    {peak / 1e9:.3f} GB during conversion (sampled) = {peak / size:.2f}x file size; "
              f"ru_maxrss {_max_rss_bytes() / 1e9:.3f} GB")
        print(f"on top of the built model: {(peak - baseline) / 1e9:.3f} GB = {(peak - baseline) / size:.2f}x file size")
        del model
        keras.backend.clear_session()
    finally:
        if args.path is None:
            os.remove(path)
        if not args.keep_output and os.path.exists(output):
            os.remove(output)
        if not os.listdir(folder):
            os.rmdir(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
