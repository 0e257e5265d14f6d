"""User-triggered weights management: fetch from the authors, import a local file."""

import os

from keras_deconv.zoo import cache, fetch, registry


def _convert(name, tag, caffemodel_path, source):
    from keras_deconv import caffe

    model = registry.build(name)

    def write(temporary):
        caffe.load_caffemodel(model, caffemodel_path)
        model.save_weights(temporary)

    return cache.store(name, tag, write, source=source)


def import_weights(name, path, tag=registry.DEFAULT):
    """Convert a local ``.caffemodel`` (or copy a ``.weights.h5``) into the cache.

    Returns the cached ``.weights.h5`` path. Nothing is written if the file
    does not match the architecture.
    """
    name, tag = registry.resolve_tag(name, tag)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    spec = registry.card(name)["weights"][tag]
    if spec.get("requires"):
        raise ValueError(f"{name}:{tag} is assembled from {', '.join(spec['requires'])}; import those instead.")
    sha256 = cache.sha256_file(path)
    source = {"file": os.path.basename(path), "sha256": sha256, "size": os.path.getsize(path)}
    known = [f.get("sha256") for f in spec.get("files", []) if f.get("sha256")]
    if known and sha256 not in known:
        raise ValueError(f"{path} has sha256 {sha256}, which is not the recorded hash of {name}:{tag} ({', '.join(known)}).")
    if path.endswith(".weights.h5"):
        model = registry.build(name)
        registry._load_weights_into(model, path, name)  # validates the architecture
        return cache.store(name, tag, model.save_weights, source=source)
    if not path.endswith(".caffemodel"):
        raise ValueError(f"Unsupported file {path!r}: expected a .caffemodel (or a .weights.h5).")
    return _convert(name, tag, path, source)


def fetch_weights(name, tag=registry.DEFAULT, progress=True, keep_download=False):
    """Download the authors' file for ``name:tag`` and convert it into the cache."""
    name, tag = registry.resolve_tag(name, tag)
    spec = registry.card(name)["weights"][tag]
    if spec.get("requires"):
        return [fetch_weights(*requirement.split(":"), progress=progress) for requirement in spec["requires"]]
    if not spec.get("files"):
        raise ValueError(f"{name}:{tag} has no download; it is shipped with the package.")
    entry = spec["files"][0]
    downloads = cache.cache_dir() / "downloads"
    destination = downloads / entry["name"]
    if not destination.exists():
        fetch.download(entry["url"], destination, name, entry.get("size"), entry.get("sha256"), progress=progress)
    source = {"file": entry["name"], "url": entry["url"], "sha256": cache.sha256_file(destination), "size": os.path.getsize(destination)}
    try:
        return _convert(name, tag, os.fspath(destination), source)
    finally:
        if not keep_download and destination.exists():
            destination.unlink()
