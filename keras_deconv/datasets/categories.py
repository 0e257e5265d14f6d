"""Category names of the datasets: PASCAL VOC, COCO, and the label spaces built from them.

The model cards name their label spaces (``LABEL_SPACES``); the COCO reader
(:mod:`keras_deconv.datasets.coco`) uses the COCO categories.

>>> from keras_deconv.datasets import categories
>>> len(categories.COCO_CLASSES), categories.LABEL_SPACES["voc21"][:2]
(80, ('background', 'aeroplane'))
"""

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)

# COCO names of the 20 VOC classes.
COCO_NAMES_OF_VOC = {
    "airplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "dining table",
    "dog", "horse", "motorcycle", "person", "potted plant", "sheep", "couch", "train", "tv",
}

# TransferNet's 80-label query space: VOC classes as ids 1-20, then the 60 COCO
# classes not in VOC as ids 21-80 (official data/README.md). The README does not
# list the order of the 60; we assume COCO's category order.
COCO_EXCLUSIVE_CLASSES = tuple(name for name in COCO_CLASSES if name not in COCO_NAMES_OF_VOC)
TRANSFERNET_LABELS = VOC_CLASSES[1:] + COCO_EXCLUSIVE_CLASSES

LABEL_SPACES = {
    "voc21": VOC_CLASSES,
    "voc20": VOC_CLASSES[1:],
    "transfernet80": TRANSFERNET_LABELS,
}

assert len(COCO_EXCLUSIVE_CLASSES) == 60 and len(TRANSFERNET_LABELS) == 80
