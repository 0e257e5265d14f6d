"""Progress bars on stderr, from tqdm, the same in every long command.

One place decides how they look: on stderr (results own stdout), redrawn in
place, and only when stderr is a terminal (tqdm's own convention), so logs,
pipes and CI output stay free of carriage-return noise.

>>> import io
>>> from keras_deconv.progress import progress_bar
>>> log = io.StringIO()
>>> with progress_bar(total=3, desc="demo", unit="img", stream=log, enabled=True) as bar:
...     for _ in range(3):
...         bar.update(1)
>>> "demo: 100%" in log.getvalue() and "3/3" in log.getvalue()
True
>>> list(progress_bar(range(3), stream=io.StringIO()))   # not a terminal: no bar, same items
[0, 1, 2]
"""

import sys

from tqdm import tqdm


def progress_bar(iterable=None, total=None, desc=None, unit="it", enabled=None, stream=None, **options):
    """A tqdm bar writing to ``stream`` (default stderr); iterate it, or call ``update``.

    Args:
        iterable: what to iterate over (optional).
        total: number of steps (None: ``len(iterable)`` where it has one).
        desc: the label in front of the bar.
        unit: what a step is (``"img"``, ``"B"`` with ``unit_scale=True``, ...).
        enabled: True, False, or None: only when ``stream`` is a terminal
            (``keras-deconv evaluate`` shows it unless ``--quiet``).
        stream: a text stream; default ``sys.stderr`` at call time.
        **options: passed to :class:`tqdm.tqdm` (``initial``, ``unit_scale``, ...).
    """
    stream = stream or sys.stderr
    interactive = hasattr(stream, "isatty") and stream.isatty()
    if enabled is None:
        enabled = interactive
    # Asked for off a terminal (a log): redraw rarely, since each redraw stays in the file.
    options.setdefault("mininterval", 0.1 if interactive else 10)
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, disable=not enabled, dynamic_ncols=True,
                **options)
