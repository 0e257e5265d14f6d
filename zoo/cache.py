"""The local weights cache: converted ``.weights.h5`` files plus a manifest each.

Location, first match wins:

1. ``$KERAS_DECONV_HOME`` (the whole cache),
2. ``$KERAS_HOME/keras_deconv``,
3. ``~/.keras/keras_deconv``.

Layout: ``<cache>/weights/<model>/<tag>.weights.h5`` and, beside it,
``<tag>.json``: the sha256 and size of the converted file and of the source
file it came from. A file is written to a temporary name in the same folder
and renamed into place only when complete, under an exclusive lock, so an
interrupted conversion never leaves a file that a later load would use, and
two processes importing the same weights both end with a valid file.
"""

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

from keras_deconv._atomic import atomic_path, write_atomically

HOME_VARIABLE = "KERAS_DECONV_HOME"


class WeightsError(RuntimeError):
    """Weights are missing, damaged or cannot be obtained; the message says what to do."""


def cache_dir():
    """The cache root (see the module docstring)."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(keras_home).expanduser() / "keras_deconv"


def weights_path(name, tag):
    return cache_dir() / "weights" / name / f"{tag}.weights.h5"


def manifest_path(name, tag):
    return cache_dir() / "weights" / name / f"{tag}.json"


def sha256_file(path, chunk_size=8 * 2**20):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def locked(path):
    """Exclusive inter-process lock for writing ``path``.

    The lock is taken on the folder that holds ``path`` (``flock`` works on a
    directory's descriptor), so no ``.lock`` file is ever left behind.
    """
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock




def store(name, tag, write_weights, source=None):
    """Create ``<tag>.weights.h5`` for model ``name`` atomically.

    Args:
        name: zoo name, e.g. ``"deconvnet"``.
        tag: weights tag, e.g. ``"voc2012"``.
        write_weights: callable taking a temporary path ending in
            ``.weights.h5`` and writing the weights there (e.g.
            ``model.save_weights``).
        source: dict describing the source file (``file``, ``sha256``,
            ``size``, ``url``) recorded in the manifest.

    Returns:
        The final path.
    """
    target = weights_path(name, tag)
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target), atomic_path(target, suffix=".weights.h5") as temporary:
        write_weights(temporary)
        manifest = {
            "name": name,
            "tag": tag,
            "sha256": sha256_file(temporary),
            "size": os.path.getsize(temporary),
            "source": source or {},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        # Manifest first: a weights file never exists without its record.
        write_atomically(manifest_path(name, tag), json.dumps(manifest, indent=1))
    return target


def repair_hint(name, tag):
    return (
        f"Re-create it with `keras-deconv weights fetch {name} --tag {tag}` or "
        f"`keras-deconv weights import {name} PATH --tag {tag}` (or delete it with `keras-deconv weights remove {name} --tag {tag}`)."
    )


def verified_path(name, tag, check_hash=True):
    """Path of cached weights after checking them against their manifest.

    Raises:
        WeightsError: missing file or manifest, or a sha256 mismatch, with the
            command that repairs it.
    """
    path, record = weights_path(name, tag), manifest_path(name, tag)
    if not path.exists():
        raise FileNotFoundError(path)
    if not record.exists():
        raise WeightsError(f"Cached weights {path} have no manifest ({record.name}); they may be incomplete. {repair_hint(name, tag)}")
    try:
        manifest = json.loads(record.read_text())
    except (OSError, ValueError) as error:
        raise WeightsError(f"Cannot read the manifest {record}: {error}. {repair_hint(name, tag)}") from error
    if os.path.getsize(path) != manifest.get("size"):
        raise WeightsError(f"Cached weights {path} have {os.path.getsize(path)} bytes, the manifest records {manifest.get('size')}. {repair_hint(name, tag)}")
    if check_hash and sha256_file(path) != manifest.get("sha256"):
        raise WeightsError(f"Cached weights {path} no longer match their recorded sha256 (the file was changed or damaged). {repair_hint(name, tag)}")
    return path


def list_cached():
    """Rows ``(name, tag, path, manifest)`` for every cached weights file."""
    root = cache_dir() / "weights"
    rows = []
    if not root.exists():
        return rows
    for path in sorted(root.glob("*/*.weights.h5")):
        name, tag = path.parent.name, path.name[: -len(".weights.h5")]
        try:
            manifest = json.loads(manifest_path(name, tag).read_text())
        except (OSError, ValueError):
            manifest = None
        rows.append((name, tag, path, manifest))
    return rows


def remove(name, tag=None):
    """Delete cached weights of ``name`` (one tag, or all); returns the paths removed."""
    folder = cache_dir() / "weights" / name
    if not folder.exists():
        return []
    if tag is None:
        removed = sorted(folder.glob("*.weights.h5"))
        shutil.rmtree(folder)
        return removed
    removed = []
    for path in (weights_path(name, tag), manifest_path(name, tag)):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
