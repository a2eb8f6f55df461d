"""The device path, checked on the CPU: memory format, constants, dtype, cuDNN settings."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from augtool.errors import OptionError
from cli import main
from model.data import AUGMENT_TOKENS, DeviceImages, compute_normalization, parse_augment
from model.networks import create_model
from model.train import TrainConfig, evaluate, fit, prepare_model, train_one_epoch, use_amp
from tests.h5data import blob_images, make_blob_h5

SIZE = 16
AUGMENT_MODES = ["none"] + [
    ",".join(combo)
    for r in range(1, len(AUGMENT_TOKENS) + 1)
    for combo in itertools.combinations(AUGMENT_TOKENS, r)
]


def _images(n: int = 24, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % 3
    return blob_images(labels, size, np.random.default_rng(seed)), labels


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("augment", AUGMENT_MODES)
def test_batches_come_out_in_the_requested_memory_format(augment, channels_last):
    images, labels = _images()
    norm = compute_normalization(images, "standardize")
    data = DeviceImages(images, labels, norm, torch.device("cpu"), channels_last=channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    tokens = parse_augment(augment)
    gen = torch.Generator().manual_seed(1)
    # 32 draws of 24 images: every image is transposed in some draws and not in others.
    for _ in range(32):
        x, _y = data.batch(torch.arange(len(data)), tokens, gen)
        assert x.shape == (len(data), 3, SIZE, SIZE) and x.dtype == torch.float32
        assert x.is_contiguous(memory_format=fmt), (augment, x.stride())
    for x, _y in data.train_batches(8, tokens, gen):
        assert x.is_contiguous(memory_format=fmt), (augment, x.stride())
    for x, _y in data.eval_batches(10):
        assert x.is_contiguous(memory_format=fmt)


def test_channels_last_batches_hold_the_same_values():
    images, labels = _images()
    norm = compute_normalization(images)
    cpu = torch.device("cpu")
    nhwc = DeviceImages(images, labels, norm, cpu, channels_last=True)
    nchw = DeviceImages(images, labels, norm, cpu, channels_last=False)
    tokens = parse_augment("dihedral,gray,jitter")
    a, _ = nhwc.batch(torch.arange(12), tokens, torch.Generator().manual_seed(3))
    b, _ = nchw.batch(torch.arange(12), tokens, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


class _Counter:
    """Wraps a torch factory that makes a tensor from host data, counting the calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.real = getattr(torch, name)
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


@pytest.fixture
def host_tensor_factories(monkeypatch):
    counters = [_Counter(n) for n in ("tensor", "as_tensor", "asarray", "from_numpy")]
    for counter in counters:
        monkeypatch.setattr(torch, counter.name, counter)
    return counters


def test_no_host_tensor_is_made_per_batch(host_tensor_factories):
    # 16 images, batches of 8: two training and two evaluation batches, each augment mode.
    images, labels = _images(16, size=32)
    data = DeviceImages(images, labels, compute_normalization(images), torch.device("cpu"))
    net = create_model("cellnet", 3, 32, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    made_before = sum(c.calls for c in host_tensor_factories)
    train_one_epoch(net, data, opt, gen, 8, augment=parse_augment("dihedral,gray,jitter"))
    evaluate(net, data, batch_size=8, tta=True)
    made = {c.name: c.calls for c in host_tensor_factories}
    assert sum(made.values()) == made_before, made


def test_the_counter_sees_a_host_tensor(host_tensor_factories):
    """The patched factories do count: the per-call default of random_gray makes one."""
    from model.data import random_gray

    random_gray(torch.zeros(2, 3, 4, 4), torch.Generator().manual_seed(0))
    assert host_tensor_factories[0].calls == 1


def test_float32_is_the_default_and_bf16_an_option():
    cuda = torch.device("cuda")  # a device object only; nothing runs on it
    for arch in ("leukemianet", "cellnet"):
        config = TrainConfig.for_arch(arch)
        assert config.amp == "off" and config.cudnn_benchmark is False
        assert not use_amp(config.amp, cuda)
    assert use_amp("bf16", cuda) and use_amp("bf16", torch.device("cpu"))
    # Checkpoints written before: True was bf16; None (then "bf16 on CUDA") is now float32.
    assert use_amp(True, cuda) and not use_amp(None, cuda) and not use_amp(False, cuda)
    with pytest.raises(OptionError, match="amp"):
        TrainConfig.for_arch("leukemianet", amp="fp8")


def test_cudnn_benchmark_is_set_only_while_fit_runs():
    torch.backends.cudnn.benchmark = False
    prepare_model(create_model("leukemianet", 3, SIZE), torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    images, labels = _images(12)
    data = DeviceImages(images, labels, compute_normalization(images), torch.device("cpu"))
    seen: list[bool] = []
    for flag in (True, False):
        config = TrainConfig.for_arch("leukemianet", epochs=1, batch_size=6, cudnn_benchmark=flag)
        net = create_model("leukemianet", 3, SIZE, generator=torch.Generator().manual_seed(0))
        fit(
            net,
            data,
            config,
            torch.Generator().manual_seed(0),
            progress=lambda event: (
                event.kind == "epoch" and seen.append(torch.backends.cudnn.benchmark)
            ),
        )
        assert torch.backends.cudnn.benchmark is False
    assert seen == [True, False]


def test_train_accepts_amp_and_cudnn_options(tmp_path: Path):
    data = make_blob_h5(tmp_path / "d.h5", per_class=[6, 6, 6], size=SIZE, seed=1)
    run = tmp_path / "run"
    args = ["train", str(data), str(run), "--epochs", "1", "--batch-size", "4"]
    args += ["--device", "cpu", "--quiet", "--amp", "bf16", "--cudnn-benchmark"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["amp"] == "bf16" and config["cudnn_benchmark"] is True
    bad = CliRunner().invoke(main, [*args[:-3], "--amp", "fp16", "--overwrite"])
    assert bad.exit_code == 2 and "--amp" in bad.output
