"""The example gallery: image | ground truth | prediction rows with a legend, as one RGB picture."""

import numpy as np

from keras_deconv import viz


def _pad_to(rgb, height, width):
    out = np.full((height, width, 3), 255, np.uint8)
    out[: rgb.shape[0], : rgb.shape[1]] = rgb
    return out


def example_gallery(rows, class_names, title=None, target_side=192):
    """One RGB picture: a row per example with image | ground truth | prediction and a legend.

    Cells of different sizes are padded (white, bottom/right) to the largest;
    small images are enlarged by an integer factor up to ``target_side``.

    Args:
        rows: ``(id, image, ground_truth, prediction)`` tuples (the image
            may be None).
        class_names: Names for the legend (indexed by label id).
        title: Optional line drawn at the top (e.g. model and weights).
        target_side: Enlarge cells whose longer side is below this.

    Returns:
        ``(H, W, 3)`` uint8 image; write it with :func:`keras_deconv.viz.save_image`.

    Example:

    >>> img = np.zeros((8, 8, 3), np.uint8); lab = np.ones((8, 8), np.uint8)
    >>> example_gallery([("a", img, lab, lab)], ["bg", "fg"]).shape[2]
    3
    """
    if not rows:
        raise ValueError("No examples to draw.")
    height = max(r[2].shape[0] for r in rows)
    width = max(r[2].shape[1] for r in rows)
    scale = max(1, int(target_side // max(height, width)))
    present = set()
    cells = []
    id_height = 12
    for image_id, image, truth, pred in rows:
        present.update(np.unique(truth).tolist())
        present.update(np.unique(pred).tolist())
        truth_rgb = viz.colorize(truth)
        pred_rgb = viz.colorize(pred)
        image_rgb = np.asarray(image, np.uint8) if image is not None else np.full_like(truth_rgb, 255)
        cells.append((image_id, [_pad_to(c, height, width) for c in (image_rgb, truth_rgb, pred_rgb)]))
    blocks = []
    for image_id, row in cells:
        grid = viz.gallery([tuple(row)], titles=None, scale=scale, pad=2)
        label = viz._text_image(str(image_id), id_height)[:, : grid.shape[1]]
        strip = np.full((id_height, grid.shape[1], 3), 255, np.uint8)
        strip[:, : label.shape[1]] = label
        blocks.append(np.concatenate([strip, grid], axis=0))
    header = viz.gallery([tuple(cells[0][1])], titles=("image", "ground truth", "prediction"), scale=scale, pad=2)
    header = header[:14]
    total_width = blocks[0].shape[1]
    parts = []
    if title:
        text = viz._text_image(str(title), 14)[:, :total_width]
        line = np.full((14, total_width, 3), 255, np.uint8)
        line[:, : text.shape[1]] = text
        parts.append(line)
    parts.append(header)
    parts.extend(blocks)
    legend = viz.legend(class_names, sorted(present), columns=max(1, total_width // 120))[:, :total_width]
    bottom = np.full((legend.shape[0] + 4, total_width, 3), 255, np.uint8)
    bottom[2 : 2 + legend.shape[0], : legend.shape[1]] = legend
    parts.append(bottom)
    return np.concatenate(parts, axis=0)
