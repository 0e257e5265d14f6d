"""The ``keras-deconv`` command line (click). Installed as ``keras_deconv.cli``."""
