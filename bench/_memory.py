"""Resident memory of one benchmark phase: the RSS at its start and the peak above it (Linux).

``resource.getrusage`` only gives the process's peak so far, which after a
TFLite conversion is the converter's (about 18 GB for the full DeconvNet) and
says nothing about the runtime timed next. Linux can reset the peak mark:
writing ``5`` to ``/proc/self/clear_refs`` sets ``VmHWM`` to the current RSS.
"""


def _status_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def reset_peak():
    """Reset the peak-RSS mark to the current RSS; returns that RSS in MB, or None where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return _status_mb("VmRSS")
    except OSError:
        return None


def peak_above(start_mb):
    """Peak RSS since :func:`reset_peak` minus ``start_mb`` (MB), or None where unsupported."""
    if start_mb is None:
        return None
    try:
        return _status_mb("VmHWM") - start_mb
    except OSError:
        return None


def resident_mb():
    """``(RSS, anonymous, file-backed)`` resident memory in MB (file-backed pages are reclaimable), or Nones."""
    try:
        return tuple(_status_mb(field) for field in ("VmRSS", "RssAnon", "RssFile"))
    except OSError:
        return (None, None, None)
