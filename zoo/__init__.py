"""The model registry. Installed as ``keras_deconv.zoo``."""
