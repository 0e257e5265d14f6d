"""One line describing the CPU, recorded with benchmark results and training runs.

Timings from different machines are not comparable, so the ``bench/``
scripts print this line next to their numbers and ``keras-deconv train``
stores it in ``run.json``.
"""

import os
import platform


def describe_cpu():
    """E.g. ``"CPU: Intel(R) Xeon(R) Processor; 2 logical CPUs; avx2 avx512f"`` (from /proc/cpuinfo where present)."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    features = [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if name in flags]
    return f"CPU: {model}; {os.cpu_count()} logical CPUs; {' '.join(features) or 'no AVX2'}"
