"""Checkpoints: ``model.pt`` files that load without unpickling code.

:func:`save_checkpoint` writes only tensors and plain types;
:func:`load_checkpoint` reads them back with ``torch.load(weights_only=True)``
and refuses, with a message saying what the file is, anything that is not an
augtool model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from augtool.errors import InputError, OptionError, OutputError
from augtool.store.publish import staged_file
from model.data import Normalization
from model.networks import create_model
from model.train import prepare_model

CHECKPOINT_FORMAT = "augtool-model"
CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """A trained model with everything needed to use it.

    Attributes:
        net: The network (eval mode, on the device it was loaded to).
        arch: Registered architecture name.
        arch_options: Its options.
        class_names: Output index -> class name.
        input_size: Side of the square input.
        normalization: Input normalisation.
        config: The training settings (plain dict).
        info: Anything else recorded (best epoch, augtool version, ...).
    """

    net: nn.Module
    arch: str
    arch_options: dict[str, Any]
    class_names: list[str]
    input_size: int
    normalization: Normalization
    config: dict[str, Any]
    info: dict[str, Any]


def save_checkpoint(
    path: str | Path,
    net: nn.Module,
    arch: str,
    arch_options: dict[str, Any],
    class_names: list[str],
    input_size: int,
    normalization: Normalization,
    config: dict[str, Any],
    info: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint that :func:`load_checkpoint` reads with ``weights_only=True``.

    The file holds only tensors and plain types (str, int, float, bool, None,
    lists, dicts): the state dict on the CPU, the architecture and its options,
    class names, input size, normalisation, training settings and ``info``. It is
    written to a temporary sibling and renamed (:func:`augtool.store.publish.staged_file`),
    so a crash never leaves half a file.

    Raises:
        OutputError: If the file cannot be written.
    """
    from augtool import __version__

    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "augtool_version": __version__,
        "arch": arch,
        "arch_options": dict(arch_options),
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "input_size": int(input_size),
        "normalization": normalization.to_dict(),
        "config": dict(config),
        "info": dict(info or {}),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    }
    try:
        with staged_file(path) as partial:
            torch.save(payload, partial)
    except OSError as err:
        raise OutputError(f"{path}: cannot write the checkpoint ({err.strerror})") from err


#: The first bytes of a file written by ``torch.save`` (a zip archive).
_ZIP_MAGIC = b"PK\x03\x04"
#: First bytes of files often given where a model belongs, and what they are.
_FILE_KINDS = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"GIF8", "a GIF image"),
    (b"\x89HDF", "an HDF5 file"),
)


def _describe_file(head: bytes) -> str:
    """What a file that is no torch archive is, from its first bytes."""
    if not head:
        return "an empty file"
    for magic, kind in _FILE_KINDS:
        if head.startswith(magic):
            return kind
    return "not a PyTorch zip archive"


def not_a_model(path: str | Path, why: str) -> InputError:
    """The error for a file given as a model that is none; never suggests an unsafe load."""
    return InputError(
        f"{path} is not an augtool model ({why}); a model is the RUN/model.pt that "
        "`augtool train` writes"
    )


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`, never unpickling code.

    ``torch.load(..., weights_only=True)`` accepts only tensors and plain
    containers, so a crafted file cannot run code; anything else that is not an
    augtool model (an image given in its place, a pickle, another program's
    weights) is refused with a message that says what the file is and never
    suggests the unsafe ``weights_only=False``.

    Args:
        path: The ``model.pt`` file.
        device: Where to put the network.

    Returns:
        The network in eval mode with its metadata.

    Raises:
        InputError: If the file is missing, not a torch file, or not an augtool model.
    """
    import warnings

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    device = torch.device(device)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    if not head.startswith(_ZIP_MAGIC):  # torch.save's format: what save_checkpoint writes
        raise not_a_model(path, _describe_file(head))
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: not the user's concern
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    except Exception as err:
        # torch's safe loader refuses in many ways (UnpicklingError, KeyError, ...). Never
        # pass its message on: it suggests weights_only=False, the unsafe load.
        raise not_a_model(path, "a PyTorch file holding more than tensors and plain data") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise not_a_model(path, f"a PyTorch file without the {CHECKPOINT_FORMAT!r} marker")
    if payload.get("format_version") != CHECKPOINT_VERSION:
        raise InputError(
            f"{path}: model format version {payload.get('format_version')!r}; this augtool "
            f"reads version {CHECKPOINT_VERSION}"
        )
    try:
        arch = str(payload["arch"])
        options = dict(payload["arch_options"])
        class_names = [str(c) for c in payload["class_names"]]
        input_size = int(payload["input_size"])
        normalization = Normalization.from_dict(payload["normalization"])
        state = payload["state_dict"]
        net = create_model(arch, len(class_names), input_size, **options)
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, OptionError) as err:
        raise InputError(f"{path}: damaged augtool model file ({err})") from err
    net = prepare_model(net, device)
    net.eval()
    return Checkpoint(
        net=net,
        arch=arch,
        arch_options=options,
        class_names=class_names,
        input_size=input_size,
        normalization=normalization,
        config=dict(payload.get("config", {})),
        info=dict(payload.get("info", {})),
    )
