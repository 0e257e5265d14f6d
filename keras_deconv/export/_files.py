"""Writing export artifacts: folders atomically, exporters' chatter to stderr, sizes on disk."""

import os
import tempfile

from keras_deconv._atomic import give_default_mode


def _write_directory_atomically(path, writer):
    """``writer(temporary_dir)``, then rename to ``path`` (replacing an old one); cleans up on failure."""
    import shutil

    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(dir=parent, prefix=".tmp-" + os.path.basename(path) + "-")
    try:
        writer(temporary)
        give_default_mode(temporary)  # mkdtemp made it 0700
        if os.path.isdir(path):
            old = tempfile.mkdtemp(dir=parent, prefix=".old-" + os.path.basename(path) + "-")
            os.rmdir(old)
            os.replace(path, old)
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if os.path.exists(path):
                os.unlink(path)
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return path


class _quiet_stdout:
    """Redirect Python-level stdout to stderr (exporters print progress to stdout)."""

    def __enter__(self):
        import contextlib
        import sys

        self._context = contextlib.redirect_stdout(sys.stderr)
        return self._context.__enter__()

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)
