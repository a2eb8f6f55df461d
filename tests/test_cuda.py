"""Checks that need a CUDA GPU (marked ``cuda``; skipped without one).

``checks/gpu_check.sh`` runs them with ``pytest -m cuda``. Each compares the
CUDA path with the CPU or checks what only CUDA does (pinned buffers, streams,
memory format of the real convolution inputs).
"""

import numpy as np
import pytest
import torch

from model.data import AUGMENT_TOKENS, DeviceImages, compute_normalization, parse_augment
from model.networks import create_model
from model.stream import StreamImages, open_lazy
from model.train import TrainConfig, evaluate, fit, prepare_model, train_one_epoch
from tests.h5data import blob_images, make_blob_h5

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SIZE = 32
CUDA = torch.device("cuda")


def _data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % 3
    return blob_images(labels, SIZE, np.random.default_rng(0)), labels


@pytest.mark.parametrize("augment", ["none", *AUGMENT_TOKENS, ",".join(AUGMENT_TOKENS)])
def test_cuda_batches_are_channels_last_and_equal_the_cpu_ones(augment):
    images, labels = _data()
    norm = compute_normalization(images, "standardize")
    gpu = DeviceImages(images, labels, norm, CUDA)
    cpu = DeviceImages(images, labels, norm, torch.device("cpu"))
    x, _ = gpu.batch(torch.arange(16, device=CUDA))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x.cpu(), cpu.batch(torch.arange(16))[0], atol=1e-5)
    gen = torch.Generator(device=CUDA).manual_seed(0)
    for _ in range(8):
        x, _ = gpu.batch(torch.arange(len(gpu), device=CUDA), parse_augment(augment), gen)
        assert x.is_contiguous(memory_format=torch.channels_last), x.stride()


def test_no_host_to_device_copy_per_batch():
    images, labels = _data()
    data = DeviceImages(images, labels, compute_normalization(images), CUDA)
    net = prepare_model(create_model("cellnet", 3, SIZE), CUDA)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    gen = torch.Generator(device=CUDA).manual_seed(0)
    augment = parse_augment("dihedral,gray,jitter")
    train_one_epoch(net, data, opt, gen, 8, augment=augment)  # warm-up
    torch.cuda.synchronize()
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        train_one_epoch(net, data, opt, gen, 8, augment=augment)
        torch.cuda.synchronize()
    copies = [e for e in prof.events() if "Memcpy HtoD" in e.name]
    assert len(copies) <= 1, [e.name for e in copies]  # none per batch (6 batches)


def test_float32_by_default_and_bf16_on_request():
    images, labels = _data()
    data = DeviceImages(images, labels, compute_normalization(images), CUDA)
    for amp, dtype in (("off", torch.float32), ("bf16", torch.bfloat16)):
        config = TrainConfig.for_arch("leukemianet", epochs=1, batch_size=16, amp=amp)
        net = prepare_model(create_model("leukemianet", 3, SIZE), CUDA)
        seen: list[torch.dtype] = []
        hook = net.classifier.register_forward_hook(lambda _m, _i, out, s=seen: s.append(out.dtype))
        fit(net, data, config, torch.Generator().manual_seed(0))
        hook.remove()
        assert set(seen) == {dtype}


def test_cuda_training_learns_like_the_cpu():
    images, labels = _data(96)
    norm = compute_normalization(images)
    config = TrainConfig.for_arch("leukemianet", epochs=4, batch_size=16, lr=0.01)
    accuracy = {}
    for device in (torch.device("cpu"), CUDA):
        data = DeviceImages(images, labels, norm, device)
        gen = torch.Generator().manual_seed(0)
        net = prepare_model(create_model("leukemianet", 3, SIZE, generator=gen), device)
        fit(net, data, config, gen)
        accuracy[device.type] = evaluate(net, data).accuracy
    assert accuracy["cuda"] > 0.9 and abs(accuracy["cuda"] - accuracy["cpu"]) <= 0.1


def test_streamed_batches_on_cuda_equal_the_resident_ones(tmp_path):
    path = make_blob_h5(tmp_path / "s.h5", per_class=[20, 20, 20], size=SIZE, seed=1)
    lazy = open_lazy(path).subset("train")
    full = lazy.images[:]
    norm = compute_normalization(full)
    streamed = StreamImages(lazy.images, lazy.labels, norm, CUDA, 20 * SIZE * SIZE * 3, 4)
    resident = DeviceImages(full, lazy.labels, norm, CUDA)
    for (a, ya), (b, yb) in zip(streamed.eval_batches(7), resident.eval_batches(7), strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)
        assert a.is_contiguous(memory_format=torch.channels_last)

    def epoch(seed: int) -> list[torch.Tensor]:
        gen = torch.Generator(device=CUDA).manual_seed(seed)
        return [x for x, _ in streamed.train_batches(8, parse_augment("dihedral"), gen)]

    first, again = epoch(3), epoch(3)
    assert len(first) == len(lazy.labels) // 8
    assert all(torch.equal(p, q) for p, q in zip(first, again, strict=True))
