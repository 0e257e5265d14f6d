"""``KEY=VALUE`` options (``--config``, ``--pipeline-option``) parsed into Python values."""

import ast


def parse_config(items):
    """Parses ``KEY=VALUE`` strings into a dict; values are Python literals when they parse.

    ``width=0.0625`` gives a float, ``input_shape=(64,64,3)`` a tuple,
    ``batch_norm=folded`` the string ``"folded"``, ``x=none`` None,
    ``x=true`` True.

    Args:
        items: Iterable of ``"KEY=VALUE"`` strings.

    Returns:
        A dict.

    Raises:
        ValueError: An item has no ``=`` or an empty key.

    Example:

    >>> parse_config(["width=0.0625", "fc_units=32", "input_shape=(64,64,3)", "mode=whole"])
    {'width': 0.0625, 'fc_units': 32, 'input_shape': (64, 64, 3), 'mode': 'whole'}
    """
    out = {}
    for item in items or ():
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key or not key.isidentifier():
            raise ValueError(f"Expected KEY=VALUE (e.g. width=0.0625). Received: {item!r}")
        raw = raw.strip()
        lowered = raw.lower()
        if lowered in ("none", "null"):
            value = None
        elif lowered in ("true", "false"):
            value = lowered == "true"
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        out[key] = value
    return out
