"""Benchmark: parse a ~1 GB DeconvNet-shaped V1 .caffemodel.

Usage:
    python bench/caffe_read.py                       # synthetic file in a temp dir
    python bench/caffe_read.py --spec PATH/DeconvNet_inference_deploy.json
    python bench/caffe_read.py path/to/real.caffemodel

Without a .caffemodel argument it writes a synthetic file shaped like
DeconvNet (from the spec JSON if given or found, else a built-in layer list
with the same blob shapes), in a child process so that the writer's memory
does not count in this process's peak RSS, reads it with
``read_caffemodel`` and deletes it. Prints parse time, GB/s and peak RSS
(``resource.getrusage``) relative to the file size.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

# The vendored official network (keras_deconv/caffe/nets/), by name.
_DEFAULT_SPEC = "DeconvNet_inference_deploy"


def _write(path, spec_path):
    from keras_deconv.caffe import load_net_spec, synthetic_layers_from_spec, write_caffemodel

    spec = load_net_spec(spec_path)
    layers = synthetic_layers_from_spec(spec, seed=0, scale=0.01, dialect="v1", lazy=True)
    write_caffemodel(path, layers, dialect="v1", name="DeconvNet-synthetic")


def _peak_rss_bytes():
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="an existing .caffemodel to read (kept)")
    parser.add_argument("--spec", default=_DEFAULT_SPEC, help="network spec (a vendored name or a JSON path) for the synthetic file")
    parser.add_argument("--no-sha256", action="store_true", help="skip hashing the file")
    parser.add_argument("--_write-only", dest="write_only", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.write_only:
        _write(args.write_only, args.spec)
        return 0

    folder = None
    path = args.path
    if path is None:
        folder = tempfile.mkdtemp(prefix="caffe_read_bench_")
        path = os.path.join(folder, "DeconvNet_synthetic.caffemodel")
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--spec", args.spec, "--_write-only", path], check=True
        )
        print(f"wrote {path} ({os.path.getsize(path) / 1e9:.3f} GB) in {time.perf_counter() - start:.1f} s")
    try:
        from keras_deconv.caffe import read_caffemodel  # imported after the write

        size = os.path.getsize(path)
        rss_before = _peak_rss_bytes()
        start = time.perf_counter()
        model = read_caffemodel(path, sha256=False)
        parse_s = time.perf_counter() - start
        rss_after = _peak_rss_bytes()
        loaded = sum(b.nbytes for r in model.layers for b in r.blobs)
        print(f"file:        {size / 1e9:.3f} GB, {len(model.layers)} layers, "
              f"{model.parameter_count:,} parameters, dialect {model.dialect}")
        print(f"parse time:  {parse_s:.2f} s  ({size / 1e9 / parse_s:.2f} GB/s)")
        print(f"peak RSS:    {rss_after / 1e9:.3f} GB = {rss_after / size:.2f}x file size "
              f"(before parsing {rss_before / 1e9:.3f} GB; blobs held {loaded / 1e9:.3f} GB)")
        if not args.no_sha256:
            start = time.perf_counter()
            from keras_deconv.caffe.reader import _MappedFile

            mapped = _MappedFile(path)
            digest = mapped.sha256()
            mapped.close()
            hash_s = time.perf_counter() - start
            print(f"sha256:      {hash_s:.2f} s ({size / 1e9 / hash_s:.2f} GB/s) {digest[:16]}...")
            print(f"peak RSS after hashing: {_peak_rss_bytes() / size:.2f}x file size")
        del model
    finally:
        if folder is not None:
            os.remove(path)
            os.rmdir(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
