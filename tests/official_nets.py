"""Where the tests find the official deploy networks: vendored in the package.

``keras_deconv/caffe/nets/`` (see its ``PROVENANCE.md``); nothing outside the
repository is read.
"""

from keras_deconv.caffe.spec import NETS_DIR

SPEC_DIR = NETS_DIR
