"""Atomic file writes: a temporary file beside the target, renamed on success.

``tempfile`` creates its files mode 0600 and folders 0700 whatever the umask;
:func:`give_default_mode` gives the final file or folder the mode a plain
``open()`` / ``os.mkdir`` would (0644 / 0755 under umask 022), so others on a
shared machine can read what we write when their umask lets them.
"""

import contextlib
import os
import tempfile


def _umask():
    mask = os.umask(0)  # the only portable way to read it
    os.umask(mask)
    return mask


def give_default_mode(path):
    """chmod ``path`` (and, for a folder, everything in it) to the umask's default mode.

    >>> import os, stat, tempfile
    >>> folder = tempfile.mkdtemp()          # created 0700
    >>> old = os.umask(0o022); give_default_mode(folder); _ = os.umask(old)
    >>> oct(stat.S_IMODE(os.stat(folder).st_mode))
    '0o755'
    """
    mask = _umask()
    path = os.fspath(path)
    if not os.path.isdir(path):
        os.chmod(path, 0o666 & ~mask)
        return
    for folder, dirs, files in os.walk(path):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~mask)


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
        give_default_mode(temporary)
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
