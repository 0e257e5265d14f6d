"""Compatibility name of :mod:`keras_deconv.export.switch_agreement` (the export verification's switch analysis).

>>> from keras_deconv import switch_agreement
>>> switch_agreement.SAME_OUTPUT_TOLERANCE
1e-06
"""

from keras_deconv.export.switch_agreement import (  # noqa: F401 - re-exported
    SAME_OUTPUT_TOLERANCE,
    compare_with_switches,
    flip_gaps,
    keras_switches,
    onnx_pinned_comparison,
    pinned_comparison,
    pooling_layers,
    switch_tensor_indices,
    two_part_comparison,
    with_switch_outputs,
)
