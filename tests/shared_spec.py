"""Where the tests find the official deploy networks (``../shared/spec/nets``).

``KERAS_DECONV_SPEC_DIR`` overrides the location.
"""

import os

SPEC_DIR = os.environ.get(
    "KERAS_DECONV_SPEC_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "spec", "nets")
)
