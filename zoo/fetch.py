"""Download the authors' weight files (user-triggered only; never in tests or CI).

Downloads go to ``<file>.part`` beside the destination, resume from it when
the server honours ``Range`` requests, and are renamed to the final name only
after the size and sha256 checks pass (where the card records them).
"""

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request

from keras_deconv.progress import progress_bar
from keras_deconv.zoo.cache import WeightsError

CONNECT_TIMEOUT_S = 15


def _offline_message(url, name, error):
    return (
        f"Cannot download {url}: {error}. This needs network access to the authors' server. "
        f"If you have the file from elsewhere, convert it with `keras-deconv weights import {name} PATH`."
    )


def download(url, destination, name, expected_size=None, expected_sha256=None, progress=True, chunk_size=2**20):
    """Download ``url`` to ``destination`` safely; returns ``(path, sha256, size)``."""
    destination = os.fspath(destination)
    partial = destination + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
    offset = os.path.getsize(partial) if os.path.exists(partial) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "keras-deconv"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_S)
    except (urllib.error.URLError, socket.timeout, OSError) as error:
        raise WeightsError(_offline_message(url, name, getattr(error, "reason", error))) from error
    with response:
        if offset and response.status != 206:
            offset = 0  # server ignored Range: start again
        total = response.headers.get("Content-Length")
        total = int(total) + offset if total is not None else expected_size
        done = offset
        bar = progress_bar(total=total, desc=os.path.basename(destination), unit="B", enabled=None if progress else False,
                           unit_scale=True, unit_divisor=1024, initial=offset)
        with bar, open(partial, "ab" if offset else "wb") as output:
            while True:
                try:
                    block = response.read(chunk_size)
                except (socket.timeout, OSError, http.client.HTTPException) as error:
                    raise WeightsError(f"Download of {url} interrupted at {done} bytes ({error}); run the command again to resume.") from error
                if not block:
                    break
                output.write(block)
                done += len(block)
                bar.update(len(block))
    size = os.path.getsize(partial)
    expected = expected_size if expected_size is not None else total
    if expected is not None and size < expected:
        # The connection dropped: keep the .part file so that the next run resumes.
        raise WeightsError(f"Download of {url} stopped at {size} of {expected} bytes; run the command again to resume.")
    if expected is not None and size > expected:
        os.unlink(partial)
        raise WeightsError(f"Downloaded {size} bytes from {url}, expected {expected}; the file was removed. Try again.")
    digest = hashlib.sha256()
    with open(partial, "rb") as source:
        for block in iter(lambda: source.read(8 * 2**20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    if expected_sha256 and sha256 != expected_sha256:
        os.unlink(partial)
        raise WeightsError(f"sha256 of the download from {url} is {sha256}, expected {expected_sha256}; the file was removed.")
    os.replace(partial, destination)
    return destination, sha256, size
