"""The networks ``augtool train`` can build, created by name from a small registry.

* ``leukemianet`` — the paper's network (§3.2, Fig. 4). Every choice the paper
  leaves open is an option with a documented default (see ``docs/train.md``).
* ``cellnet`` — a stronger network written here: a compact VGG-style CNN of
  five convolution blocks ending in global average pooling, meant for the
  leakage-free split where the paper's network overfits.

Each architecture's name, options and training defaults live in :mod:`model.archs`
(torch-free, for ``--help`` and early checks); :func:`create_model`
refuses unknown options and values of the wrong type, so a typo never passes
silently. Weights are initialised from an explicit :class:`torch.Generator`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from augtool.errors import OptionError
from model.archs import ARCHS, ArchInfo, check_options, get_info
from model.archs import list_models as list_models


@dataclass(frozen=True)
class ArchSpec:
    """One registered architecture.

    Attributes:
        name: Registry name (``--arch``).
        summary: One line for ``--help`` and the docs.
        builder: ``builder(num_classes, input_size, **options) -> nn.Module``.
        options: Every option the builder takes, with its default value; the
            default's type is the type a value must have.
        training: Recommended training settings (keys of
            :class:`model.train.TrainConfig`) used where the user gives none.
    """

    name: str
    summary: str
    builder: Callable[..., nn.Module]
    options: Mapping[str, Any]
    training: Mapping[str, Any] = field(default_factory=dict)


class LeukemiaNet(nn.Module):
    """The paper's LeukemiaNet (Fig. 4).

    ``input -> conv k x k (c1) -> BN -> ReLU -> maxpool 2x2 -> conv k x k (c2) -> BN
    -> ReLU -> maxpool 2x2 -> fully connected -> logits``. The softmax of the paper
    is applied by the loss (cross-entropy on logits) and by :func:`predict_proba`.

    Args:
        num_classes: Output classes (the paper: 3).
        input_size: Side of the square input (the paper: 227).
        conv1_filters: Filters of the first convolution (paper: 10).
        conv2_filters: Filters of the second convolution (decision: 20; the text
            does not give it).
        kernel_size: Convolution kernel side (paper: 4).
        padding: Convolution padding (decision: 0, MATLAB's ``'Padding', 0`` default).
        pool1_stride: Stride of the first max-pool (decision: 2; MATLAB's own
            ``maxPooling2dLayer(2)`` default would be 1).
        pool2_stride: Stride of the second max-pool (decision: 2).
    """

    def __init__(
        self,
        num_classes: int,
        input_size: int = 227,
        conv1_filters: int = 10,
        conv2_filters: int = 20,
        kernel_size: int = 4,
        padding: int = 0,
        pool1_stride: int = 2,
        pool2_stride: int = 2,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, conv1_filters, kernel_size, padding=padding),
            nn.BatchNorm2d(conv1_filters),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, stride=pool1_stride),
            nn.Conv2d(conv1_filters, conv2_filters, kernel_size, padding=padding),
            nn.BatchNorm2d(conv2_filters),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, stride=pool2_stride),
        )
        side = input_size
        for stride in (pool1_stride, pool2_stride):
            side = side + 2 * padding - kernel_size + 1
            side = (side - 2) // stride + 1
        if side < 1:
            raise OptionError("input_size", f"{input_size} is too small for LeukemiaNet")
        self.classifier = nn.Linear(conv2_filters * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of a normalised ``(B, 3, S, S)`` batch."""
        return self.classifier(torch.flatten(self.features(x), 1))

    def init_weights(self, generator: torch.Generator) -> None:
        """MATLAB's defaults: Glorot-uniform weights, zero biases, BN scale 1 shift 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class CellNet(nn.Module):
    """A compact CNN: a strided stem, conv blocks with max-pooling, global average pooling.

    The stem (``patch``: conv 4x4 stride 4; ``conv``: conv 3x3 stride 2 and max-pool 2)
    brings 227 px to 56-57 px. Each width in ``widths`` is one block of
    ``convs_per_block`` (conv3x3 -> BN -> ReLU) layers, with a 2x2 max-pool between
    blocks; then global average pooling and a linear classifier. About 1.2 M
    parameters with the defaults.

    Args:
        num_classes: Output classes.
        input_size: Side of the square input (any size >= 32 works: pooling is global).
        stem_width: Channels of the stem convolution.
        widths: Channels of each block, comma-separated (e.g. ``"32,64,128,256"``).
        convs_per_block: Convolutions per block.
        stem: ``patch`` or ``conv`` (slower, finer).
        head: ``gap`` (global average pooling) or ``gap+center`` (also the average
            over the central third of the last feature map).
        crop: Keep only this central fraction of each input side (1.0: all).
        coords: Give the stem and the last block a channel holding each pixel's
            distance from the image centre, so features can depend on position
            (on cell crops the class is the object near the middle).
    """

    def __init__(
        self,
        num_classes: int,
        input_size: int = 227,
        stem_width: int = 32,
        widths: str = "32,64,128,256",
        convs_per_block: int = 2,
        stem: str = "patch",
        head: str = "gap",
        crop: float = 1.0,
        coords: bool = True,
    ) -> None:
        super().__init__()
        try:
            chans = [int(w) for w in widths.split(",")]
        except ValueError as err:
            raise OptionError(
                "widths", f"expected comma-separated integers, got {widths!r}"
            ) from err
        if not chans or min(chans) < 1 or convs_per_block < 1 or stem_width < 1:
            raise OptionError("widths", "channel counts and convs_per_block must be >= 1")
        if input_size < 32:
            raise OptionError("input_size", f"{input_size} is too small for CellNet (>= 32)")
        if stem not in ("conv", "patch"):
            raise OptionError("stem", f"expected 'conv' or 'patch', got {stem!r}")
        if head not in HEADS:
            raise OptionError("head", f"expected one of {', '.join(HEADS)}, got {head!r}")
        if not 0.1 <= crop <= 1.0:
            raise OptionError("crop", f"must be in [0.1, 1], got {crop}")
        self.head, self.crop, self.coords = head, crop, coords
        extra = 1 if coords else 0
        if stem == "conv":
            self.stem = nn.Sequential(
                *_conv_bn_relu(3 + extra, stem_width, stride=2), nn.MaxPool2d(2)
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(3 + extra, stem_width, 4, stride=4, bias=False),
                nn.BatchNorm2d(stem_width),
                nn.ReLU(inplace=True),
            )
        blocks = []
        cin = stem_width
        for i, cout in enumerate(chans):
            last = i == len(chans) - 1
            layers: list[nn.Module] = []
            for j in range(convs_per_block):
                first_in = cin + (extra if last else 0)
                layers += _conv_bn_relu(first_in if j == 0 else cout, cout)
            if not last:
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Linear(cin * (2 if head == "gap+center" else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of a normalised ``(B, 3, S, S)`` batch."""
        if self.crop < 1.0:
            x = center_crop(x, self.crop)
        f = self.stem(with_radius(x) if self.coords else x)
        for i, block in enumerate(self.blocks):
            if self.coords and i == len(self.blocks) - 1:
                f = with_radius(f)
            f = block(f)
        pooled = f.mean(dim=(2, 3))
        if self.head == "gap+center":
            pooled = torch.cat([pooled, center_mean(f)], dim=1)
        return self.classifier(pooled)

    def init_weights(self, generator: torch.Generator) -> None:
        """He-normal convolutions (fan-out), Glorot classifier, BN scale 1 shift 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
            elif isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def with_radius(x: torch.Tensor) -> torch.Tensor:
    """Append a channel: each pixel's distance from the centre, 0 there, about 1 at the corners."""
    h, w = x.shape[2], x.shape[3]
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(h, 1)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, w)
    radius = torch.sqrt((ys * ys + xs * xs) / 2.0)
    return torch.cat([x, radius.expand(x.shape[0], 1, h, w)], dim=1)


#: Heads of :class:`CellNet`: global average pooling, or that concatenated with the
#: average over the central third of the final feature map.
HEADS = ("gap", "gap+center")


def center_crop(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """The central ``fraction`` of each side of a ``(B, C, H, W)`` batch (a view)."""
    h, w = x.shape[2], x.shape[3]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[:, :, top : top + ch, left : left + cw]


def center_mean(f: torch.Tensor) -> torch.Tensor:
    """Mean of ``(B, C, H, W)`` features over the central third (at least one cell) per side."""
    h, w = f.shape[2], f.shape[3]
    top, left = h // 3, w // 3
    return f[:, :, top : h - top, left : w - left].mean(dim=(2, 3))


def options_of(cls: type[nn.Module]) -> dict[str, Any]:
    """An architecture's options and defaults, read from its constructor's signature."""
    params = inspect.signature(cls.__init__).parameters
    skip = {"self", "num_classes", "input_size"}
    return {k: p.default for k, p in params.items() if k not in skip}


_BUILDERS: dict[str, type[nn.Module]] = {"leukemianet": LeukemiaNet, "cellnet": CellNet}


def _spec(info: ArchInfo) -> ArchSpec:
    """Pair a torch-free registry entry with its builder; their options must agree."""
    builder = _BUILDERS[info.name]
    if options_of(builder) != dict(info.options):
        raise RuntimeError(
            f"model/archs.py lists the options of {info.name!r} as {dict(info.options)}, "
            f"but {builder.__name__} takes {options_of(builder)}"
        )
    return ArchSpec(info.name, info.summary, builder, info.options, info.training)


_REGISTRY: dict[str, ArchSpec] = {name: _spec(info) for name, info in ARCHS.items()}


def get_spec(name: str) -> ArchSpec:
    """The registry entry of ``name``, with its builder.

    Raises:
        OptionError: If no architecture has that name (the message lists them).
    """
    return _REGISTRY[get_info(name).name]


def create_model(
    name: str,
    num_classes: int,
    input_size: int = 227,
    generator: torch.Generator | None = None,
    **options: Any,
) -> nn.Module:
    """Build a registered network with freshly initialised weights.

    Args:
        name: Architecture name, one of :func:`list_models`.
        num_classes: Number of output classes (>= 2).
        input_size: Side of the square input images.
        generator: Source of the initial weights; ``None`` uses a generator seeded
            with 0, so a model is never initialised from global random state.
        **options: Architecture options, checked by :func:`check_options`.

    Returns:
        The network in training mode, on the CPU, in float32.

    Raises:
        OptionError: On an unknown name or option, or impossible sizes.
    """
    if num_classes < 2:
        raise OptionError("num_classes", f"need at least 2 classes, got {num_classes}")
    checked = check_options(name, options)
    net = get_spec(name).builder(num_classes, input_size, **checked)
    net.init_weights(generator if generator is not None else torch.Generator().manual_seed(0))
    return net


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
