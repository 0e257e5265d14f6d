"""Median wall-clock timing shared by the benchmark scripts.

The scripts run as ``python bench/NAME.py``, so this folder is on
``sys.path`` and they import it as ``from _timing import median_ms``.
"""

import statistics
import time


def median_ms(function, repeats, warmup=1):
    """Median milliseconds of ``repeats`` calls of ``function()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3
