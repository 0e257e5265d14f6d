"""Keep TensorFlow's, absl's and LiteRT's log lines off the terminal.

TensorFlow's C++ runtime writes lines such as ``I0000 00:00:... port.cc:153]
oneDNN custom operations are on`` straight to file descriptor 2, some of them
before absl's logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` alone does
not silence them (``spec``: they appear even at level 3). :func:`silence`
therefore does three things before TensorFlow is imported:

* sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user set it) and lowers the
  ``tensorflow``/``absl`` Python loggers to errors;
* routes Python warnings into :mod:`logging`, where they are dropped below
  error level;
* points descriptor 2 at a pipe whose reader thread drops the C++ log lines
  (:func:`is_runtime_log`) and passes everything else through, while
  Python's ``sys.stderr`` keeps writing to the real terminal (messages and
  progress stay in order and unfiltered).

``keras-deconv --verbose`` skips all of it.
"""

import atexit
import logging
import os
import re
import sys
import threading

# absl/glog prefix ("I0000 00:00:1796... 6253 port.cc:153] ..."), absl's
# pre-initialisation banner, and the continuation line of the CPU-feature notice.
_RUNTIME_LOG = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.\-]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    rb"|INFO: \[[\w./\-]+:\d+\] "  # LiteRT's own (e.g. accelerator_registry.cc at exit)
    rb"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+$)"
    # ^ the TFLite converter's quantizer, printed once per int8 conversion
)


def is_runtime_log(line):
    """Whether a raw stderr line is a TensorFlow / absl / LiteRT runtime log line.

    >>> is_runtime_log(b"I0000 00:00:1796396024.876794    6253 port.cc:153] oneDNN custom operations are on.")
    True
    >>> is_runtime_log(b"Error: shape.png: not a recognised image file")
    False
    """
    return bool(_RUNTIME_LOG.match(line))


class _StderrFilter:
    """Descriptor 2 -> pipe -> thread -> the original stderr, minus runtime log lines."""

    def __init__(self):
        sys.stderr.flush()
        self.original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.reader = os.fdopen(read_end, "rb", buffering=0)
        # Python-level stderr bypasses the filter: it is ours and never TF's C++ output.
        self.python_stderr = sys.stderr
        sys.stderr = open(os.dup(self.original), "w", buffering=1, encoding=getattr(self.python_stderr, "encoding", None) or "utf-8",
                          errors="backslashreplace")
        self.thread = threading.Thread(target=self._pump, name="keras-deconv-stderr-filter", daemon=True)
        self.thread.start()

    def _pump(self):
        pending = b""
        while True:
            chunk = self.reader.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            self._forward(lines)
        if pending:
            self._forward([pending])

    def _forward(self, lines):
        kept = [line for line in lines if not is_runtime_log(line)]
        if kept:
            os.write(self.original, b"\n".join(kept) + b"\n")

    def close(self):
        """Restore descriptor 2 and ``sys.stderr``, forwarding what is still in the pipe."""
        sys.stderr.flush()
        os.dup2(self.original, 2)  # closes the pipe's last write end: the thread sees EOF
        self.thread.join(timeout=5)
        sys.stderr.close()
        sys.stderr = self.python_stderr
        os.close(self.original)


def _mute_at_exit():
    """Point descriptor 2 at the null device once Python is done.

    LiteRT logs from C++ destructors (``INFO: [accelerator_registry.cc:43]
    DestroyAccelerator ...``) after the interpreter's last line, too late for
    any filter; by then the command has said all it has to say.
    """
    try:
        sys.stderr.flush()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    except (OSError, ValueError):
        pass


def silence():
    """Silence the runtimes' logging for this process (call before importing TensorFlow).

    Returns a callable that removes the filter (the CLI calls it when the command is done).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "keras", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.captureWarnings(True)
    atexit.register(_mute_at_exit)
    try:
        stream = _StderrFilter()
    except (OSError, ValueError, AttributeError):  # no real descriptor 2 (embedded, some test runners)
        return lambda: None
    return stream.close
