"""Atomic file writes: a temporary file beside the target, renamed on success."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On any exception (or interruption) the temporary file is removed, so a
    reader never sees a half-written ``path``. ``suffix`` (default: the
    target's file name) matters for writers that check extensions, such as
    Keras' ``save_weights`` (``.weights.h5``).

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(target) as temporary:
    ...     _ = open(temporary, "w").write("done")
    >>> open(target).read()
    'done'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix or "-" + os.path.basename(path))
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_atomically(path, data):
    """Write ``bytes`` or ``str`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb" if isinstance(data, bytes) else "w") as stream:
            stream.write(data)
    return os.fspath(path)
