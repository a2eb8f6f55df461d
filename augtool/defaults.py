"""Every choice list and default value the library and the command line share, once.

The library's dataclasses and functions take their defaults from here, and the
command line builds every ``click.Choice`` and every shown default from here, so
that a help text never types a number or a list of its own. Pure Python, no
imports of augtool or any library: ``augtool --help`` reads this module without
loading numpy or OpenCV.
"""

from __future__ import annotations

from collections.abc import Iterable

# --- expand: counts and sizes ---------------------------------------------------------

#: Conventional outputs, originals included, when neither target nor factor is given
#: (the paper's 1,492-image set).
DEFAULT_TARGET = 1492
#: PCA copies that ``--pca`` adds (1,492 + 184 = the paper's 1,676-image set).
DEFAULT_PCA_COUNT = 184
#: Output side length (the paper's input is 227x227x3).
DEFAULT_SIZE = 227
#: Smallest and largest output side length.
MIN_SIZE = 8
MAX_SIZE = 4096
#: Sources (and preview images) larger than this many pixels are refused.
MAX_PIXELS = 100_000_000
#: Most images one run may plan (conventional and PCA): 10 million 227x227 PNGs are about
#: 1.5 TB; a recorded target beyond it is refused before anything is planned.
MAX_OUTPUTS = 10_000_000
#: Transforms to cycle through: ``all`` of the paper's ten.
DEFAULT_TRANSFORMS = "all"

# --- expand: transform ranges ---------------------------------------------------------

DEFAULT_SIGMA_RANGE = (4.0, 8.0)
DEFAULT_ROTATE_RANGE = (-45.0, 45.0)
DEFAULT_TRANSLATE_RANGE = (25.0, 50.0)
DEFAULT_SHEAR_RANGE = (0.3, 1.0)

# --- PCA colour jitter ----------------------------------------------------------------

PCA_MODES = ("pixel", "shift")
DEFAULT_PCA_MODE = "pixel"
PCA_SCALES = ("relative", "unit", "byte")
DEFAULT_PCA_SCALE = "relative"
DEFAULT_PCA_STD = 0.5
PCA_K_RANGE = (1, 3)
DEFAULT_PCA_K = 3

# --- splits ---------------------------------------------------------------------------

#: The fractional split: a train fraction, or train,val (2 values) or train,val,test.
DEFAULT_SPLIT = "0.7"
SPLIT_BY = ("source", "image")
DEFAULT_SPLIT_BY = "source"
#: What a command that reads an expand output can read: one split, or every image.
SUBSETS = ("train", "val", "test", "all")
DEFAULT_EVAL_SUBSET = "test"
#: Order of split rows in every table: train, val, test, all, then anything else by name.
SPLIT_ORDER = SUBSETS


def split_sort_key(split: str) -> tuple[int, str]:
    """Sort key that puts splits in :data:`SPLIT_ORDER`, unknown names (``fold 3``) after."""
    rank = SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)
    return rank, split


def sort_splits(splits: Iterable[str]) -> list[str]:
    """The distinct split names, in table order."""
    return sorted(dict.fromkeys(splits), key=split_sort_key)


# --- output formats -------------------------------------------------------------------

OUTPUT_FORMATS = ("folder", "hdf5")
ANNOTATION_FORMATS = ("voc", "coco", "yolo")
#: Segmentation formats (``expand --masks``): COCO polygons/RLE, YOLO polygons, PNG maps, VOC.
MASK_FORMATS = ("coco", "yolo", "png", "png-instances", "voc")
#: An output instance's box: the tight box of its mapped mask, or its source box mapped.
MASK_BOXES = ("tight", "hull")
#: What ``expand --annotation-format`` takes: box formats, and mask formats (``--segmentation``).
EXPAND_ANNOTATION_FORMATS = tuple(dict.fromkeys(ANNOTATION_FORMATS + MASK_FORMATS))
#: What ``cells --annotation-format`` takes: box formats, and instance-id PNGs (``--crop mask``).
CELLS_ANNOTATION_FORMATS = (*ANNOTATION_FORMATS, "png-instances")
DEFAULT_MASK_BOXES = "tight"
IMAGE_FORMATS = ("png", "jpg")
DEFAULT_IMAGE_FORMAT = "png"
DEFAULT_JPEG_QUALITY = 95
COMPRESSIONS = ("none", "lzf", "gzip")
DEFAULT_COMPRESSION = "none"
DEFAULT_MIN_VISIBILITY = 0.3

# --- where expand renders -------------------------------------------------------------

BACKENDS = ("local", "dask")
DEFAULT_BACKEND = "local"
DEFAULT_SCHEDULER_TIMEOUT = 10.0

# --- cells ----------------------------------------------------------------------------

CROPS = ("window", "box", "mask")
#: ``cells --crop mask``: the pixels outside the cell's mask filled (black) or kept.
MASK_BACKGROUNDS = ("fill", "keep")
DEFAULT_MASK_BACKGROUND = "fill"
DEFAULT_CROP = "window"
BORDER_POLICIES = ("keep", "drop-truncated", "drop-touching")
DEFAULT_BORDER = "keep"
DEFAULT_WINDOW = 256
DEFAULT_MARGIN = 0.1
#: Output side of ``--crop box`` cells when no size is given.
DEFAULT_BOX_SIZE = 256

# --- synth and preview ----------------------------------------------------------------

DEFAULT_PER_CLASS: dict[str, int] = {"ALL": 49, "AML": 33, "normal": 59}
DEFAULT_SYNTH_SIZE = (640, 480)
DEFAULT_COLUMNS = 5
DEFAULT_PER_CELL = 4

# --- train, evaluate, predict ---------------------------------------------------------

DEVICES = ("auto", "cuda", "cpu")
DEFAULT_DEVICE = "auto"
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "cosine")
NORMALIZE_MODES = ("zerocenter", "standardize")
AMP_MODES = ("off", "bf16")
AUGMENT_TOKENS = ("flip", "dihedral", "gray", "jitter")
DEFAULT_ARCH = "leukemianet"
DEFAULT_EVAL_BATCH_SIZE = 256
