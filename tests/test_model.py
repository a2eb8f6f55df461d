import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from augtool.errors import InputError, OptionError
from augtool.store.dataset import open_dataset
from cli import main
from model.checkpoint import load_checkpoint
from model.data import (
    DeviceImages,
    Normalization,
    compute_normalization,
    parse_augment,
    random_flips,
    random_gray,
    random_jitter,
)
from model.networks import create_model, list_models
from model.train import (
    TrainConfig,
    dihedral_views,
    evaluate,
    fit,
    train_one_epoch,
)
from tests.conftest import train_cli
from tests.h5data import blob_images

CLASSES = ["ALL", "AML", "normal"]
SIZE = 32


def _tensors(images, labels, mode="zerocenter"):
    return DeviceImages(images, labels, compute_normalization(images, mode), torch.device("cpu"))


@pytest.mark.parametrize("arch", list_models())
def test_every_arch_maps_227_images_to_class_logits(arch):
    net = create_model(arch, 3, 227).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 227, 227))
    assert out.shape == (2, 3)


def test_leukemianet_layers_follow_the_paper():
    net = create_model("leukemianet", 3, 227)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (3, 10, (4, 4)),
        (10, 20, (4, 4)),
    ]
    # 227 -conv4-> 224 -pool2/2-> 112 -conv4-> 109 -pool2/2-> 54; 54 * 54 * 20 inputs to FC.
    assert net.classifier.in_features == 54 * 54 * 20
    wider = create_model("leukemianet", 3, 227, conv2_filters=32, pool1_stride=1)
    assert wider.classifier.in_features == 32 * 110 * 110


def test_create_model_checks_options():
    with pytest.raises(OptionError, match="arch"):
        create_model("alexnet", 3)
    with pytest.raises(OptionError, match="conv3_filters"):
        create_model("leukemianet", 3, conv3_filters=5)
    with pytest.raises(OptionError, match="expected int"):
        create_model("leukemianet", 3, conv1_filters="ten")
    with pytest.raises(OptionError, match="head"):
        create_model("cellnet", 3, head="flatten")
    with pytest.raises(OptionError, match="too small"):
        create_model("leukemianet", 3, input_size=8)
    # command-line values arrive as text and are parsed into the option's type
    assert create_model("leukemianet", 3, 64, conv2_filters="7").classifier.in_features % 7 == 0
    assert create_model("cellnet", 3, 64, widths="16").classifier.in_features == 16
    assert create_model("cellnet", 3, 64, coords="true").coords is True
    assert create_model("cellnet", 3, 64, coords="false").coords is False
    with pytest.raises(OptionError, match="true or false"):
        create_model("cellnet", 3, 64, coords="maybe")


@pytest.mark.parametrize(
    "options",
    [
        {"head": "gap+center"},
        {"stem": "conv", "coords": True},
        {"crop": 0.5, "widths": "8,16", "convs_per_block": 1},
    ],
)
def test_cellnet_options_build_working_networks(options):
    net = create_model("cellnet", 4, 64, **options).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_same_generator_same_initial_weights():
    a = create_model("cellnet", 3, 64, generator=torch.Generator().manual_seed(5))
    b = create_model("cellnet", 3, 64, generator=torch.Generator().manual_seed(5))
    c = create_model("cellnet", 3, 64, generator=torch.Generator().manual_seed(6))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_normalization_is_exact_per_channel_statistics():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    flat = images.reshape(-1, 3).astype(np.float64)
    zc = compute_normalization(images, "zerocenter", chunk=2)
    assert np.allclose(zc.mean, flat.mean(axis=0)) and zc.std == (1.0, 1.0, 1.0)
    st = compute_normalization(images, "standardize")
    assert np.allclose(st.std, flat.std(axis=0))
    assert Normalization.from_dict(st.to_dict()) == st
    with pytest.raises(OptionError, match="normalize"):
        compute_normalization(images, "minmax")


def test_device_batch_gathers_and_normalizes():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    data = _tensors(images, np.arange(6) % 3, "standardize")
    x, y = data.batch(torch.tensor([4, 1]))
    norm = data.normalization
    want = (images[[4, 1]].astype(np.float64) - norm.mean) / norm.std
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert np.allclose(x.permute(0, 2, 3, 1).numpy(), want, atol=1e-5)
    assert y.tolist() == [1, 1]


def test_random_flips_are_symmetries_of_each_image():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.integers(0, 256, (64, 5, 5, 3), dtype=np.uint8))
    out = random_flips(x, torch.Generator().manual_seed(0), transpose=True)
    variants = set()
    for a, b in zip(x, out, strict=True):
        options = []
        for t in (a, a.transpose(0, 1)):
            options += [t, t.flip(0), t.flip(1), t.flip(0).flip(1)]
        match = [i for i, o in enumerate(options) if torch.equal(o, b)]
        assert match
        variants.add(match[0])
    assert len(variants) == 8  # all eight symmetries drawn over 64 images


def test_augment_tokens_parse_and_reject_unknown():
    assert parse_augment("none") == frozenset()
    assert parse_augment("dihedral, gray") == {"dihedral", "gray"}
    with pytest.raises(OptionError, match="unknown mixup"):
        parse_augment("flip,mixup")


def test_random_gray_and_jitter_act_per_image():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((200, 3, 4, 4), generator=gen) * 255
    gray = random_gray(x, gen)
    is_gray = (gray[:, 0] == gray[:, 1]).flatten(1).all(1) & (gray[:, 1] == gray[:, 2]).flatten(
        1
    ).all(1)
    unchanged = (gray == x).flatten(1).all(1)
    assert torch.all(is_gray ^ unchanged)
    assert 20 < int(is_gray.sum()) < 80  # probability 1/4
    lum = (x * torch.tensor([0.2989, 0.5870, 0.1140]).view(1, 3, 1, 1)).sum(1)
    assert torch.allclose(gray[is_gray, 0], lum[is_gray], atol=1e-3)
    jittered = random_jitter(x, gen)
    assert jittered.min() >= 0 and jittered.max() <= 255
    assert not torch.equal(jittered, x)
    assert (jittered - x).abs().max() <= 0.1 * 255 + 12 + 1e-3


def test_a_few_steps_reduce_the_loss():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 16)
    data = _tensors(blob_images(labels, SIZE, rng), labels)
    net = create_model("leukemianet", 3, SIZE, generator=torch.Generator().manual_seed(0))
    before = evaluate(net, data).loss
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        train_one_epoch(net, data, opt, gen, batch_size=16)
    after = evaluate(net, data)
    assert after.loss < 0.5 * before
    assert after.accuracy > 0.9


def test_same_seed_same_weights_on_cpu(trained_run, tiny_h5, tmp_path):
    """The shared run's command again: one more network, bit-identical weights and history."""
    again = tmp_path / "again"
    train_cli(tiny_h5, again)
    a = load_checkpoint(trained_run / "model.pt").net.state_dict()
    b = load_checkpoint(again / "model.pt").net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first, second = ((run / "history.csv").read_text().splitlines() for run in (trained_run, again))
    header = first[0].split(",")
    learned = [i for i, column in enumerate(header) if "seconds" not in column]
    assert len(learned) > 3 and len(first) == len(second) == 4
    for row_a, row_b in zip(first[1:], second[1:], strict=True):
        values_a, values_b = row_a.split(","), row_b.split(",")
        assert [values_a[i] for i in learned] == [values_b[i] for i in learned]


def test_the_seed_draws_the_batch_order_and_augmentation():
    """The seed's other use in training (its use for initial weights is tested above)."""
    labels = np.repeat(np.arange(3), 8)
    data = _tensors(blob_images(labels, SIZE, np.random.default_rng(0)), labels)
    augment = parse_augment("dihedral,gray,jitter")

    def epoch(seed: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return [x for x, _ in data.train_batches(8, augment, gen)]

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_fit_keeps_the_best_epoch_on_val():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 12)
    images = blob_images(labels, SIZE, rng)
    train, val = _tensors(images[::2], labels[::2]), _tensors(images[1::2], labels[1::2])
    config = TrainConfig.for_arch("leukemianet", epochs=6, batch_size=6, lr=0.05, patience=2)
    gen = torch.Generator().manual_seed(0)
    net = create_model("leukemianet", 3, SIZE, generator=gen)
    result = fit(net, train, config, gen, val=val)
    accs = [row["val_accuracy"] for row in result.history]
    kept = result.history[result.best_epoch - 1]
    assert kept["val_accuracy"] == max(accs)
    assert evaluate(net, val).accuracy == pytest.approx(kept["val_accuracy"])
    assert evaluate(net, val).loss == pytest.approx(kept["val_loss"], rel=1e-5)
    if result.stopped_early:
        assert len(result.history) - result.best_epoch == 2


def test_train_config_errors_name_the_option():
    with pytest.raises(OptionError, match="lr"):
        TrainConfig.for_arch("leukemianet", lr=-1.0)
    with pytest.raises(OptionError, match="augment"):
        TrainConfig.for_arch("leukemianet", augment="mixup")
    with pytest.raises(OptionError, match="patience"):
        TrainConfig.for_arch("leukemianet", patience=0)
    paper = TrainConfig.for_arch("leukemianet")
    assert (paper.epochs, paper.lr, paper.batch_size, paper.momentum, paper.weight_decay) == (
        30,
        0.001,
        128,
        0.9,
        1e-4,
    )


def test_train_writes_the_run_folder(trained_run, tiny_h5):
    assert sorted(p.name for p in trained_run.iterdir()) == [
        "curves.png",
        "history.csv",
        "metrics.json",
        "model.pt",
    ]
    with (trained_run / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"train_loss", "train_accuracy", "val_accuracy"} <= set(rows[0])
    assert not [c for c in rows[0] if c.startswith("test")]  # training never scores test
    metrics = json.loads((trained_run / "metrics.json").read_text())
    data = open_dataset(tiny_h5)
    assert metrics["splits"] == {s: int(np.sum(data.splits == s)) for s in ("train", "val", "test")}
    val_originals = sum(
        t == "original" for t, s in zip(data.transforms, data.splits, strict=True) if s == "val"
    )
    assert "test" not in metrics
    assert metrics["val"]["n"] == metrics["splits"]["val"]
    assert metrics["val"]["originals"]["n"] == val_originals
    assert 1 <= metrics["best_epoch"] <= 3
    assert metrics["data_path"] == "resident"  # 42 small images: far below the memory budget
    assert not list(trained_run.parent.glob(".run.*"))  # staging folder renamed away


def test_checkpoint_loads_weights_only_with_metadata(trained_run, tiny_h5):
    raw = torch.load(trained_run / "model.pt", weights_only=True)
    assert raw["format"] == "augtool-model" and raw["arch"] == "leukemianet"
    ckpt = load_checkpoint(trained_run / "model.pt")
    assert ckpt.class_names == CLASSES and ckpt.input_size == SIZE
    train = open_dataset(tiny_h5, "train")
    expected = compute_normalization(train.images, "zerocenter")  # train split only
    assert np.allclose(ckpt.normalization.mean, expected.mean)
    assert not ckpt.net.training


def test_train_refuses_a_non_empty_run_folder(tiny_h5, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    args = ["train", str(tiny_h5), str(run), "--epochs", "1", "--device", "cpu", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "not empty" in result.output
    assert (run / "notes.txt").exists()
    result = CliRunner().invoke(main, [*args, "--overwrite", "--augment", "flip,gray,jitter"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in run.iterdir())
    assert names == ["curves.png", "history.csv", "metrics.json", "model.pt"]
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["augment"] == "flip,gray,jitter"


def test_train_rejects_bad_options(tiny_h5, tmp_path):
    out = str(tmp_path / "r")
    result = CliRunner().invoke(main, ["train", str(tiny_h5), out, "--arch", "vgg"])
    assert result.exit_code == 2 and "'vgg' is not one of 'cellnet', 'leukemianet'" in result.output
    result = CliRunner().invoke(main, ["train", str(tiny_h5), out, "--arch-option", "conv9=3"])
    assert result.exit_code == 2 and "conv9" in result.output
    assert not Path(out).exists()


def test_evaluate_prints_table1_and_writes_files(trained_run, tiny_h5, tmp_path):
    out = tmp_path / "eval"
    model = str(trained_run / "model.pt")
    result = CliRunner().invoke(main, ["evaluate", model, str(tiny_h5), str(out)])
    assert result.exit_code == 0, result.output
    for label in ("True positive (TP)", "Specificity", "Accuracy", "Macro F1", "Originals only"):
        assert label in result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"] == "test" and report["n"] == len(open_dataset(tiny_h5, "test"))
    assert cv2.imread(str(out / "confusion.png")) is not None
    val = CliRunner().invoke(main, ["evaluate", model, str(tiny_h5), str(out), "--subset", "val"])
    assert val.exit_code == 0, val.output
    report = json.loads((out / "metrics.json").read_text())
    train_metrics = json.loads((trained_run / "metrics.json").read_text())
    assert report["confusion"] == train_metrics["val"]["confusion"]  # the kept model's, again


def test_dihedral_views_are_the_eight_distinct_symmetries():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    views = dihedral_views(x)
    assert len(views) == 8 and torch.equal(views[0], x)
    assert len({v.numpy().tobytes() for v in views}) == 8
    assert all(v.shape == x.shape for v in views)


def test_tta_averages_the_probabilities_of_the_eight_views():
    images, labels = blob_images(np.array([0, 1, 2, 0]), SIZE, np.random.default_rng(1)), None
    labels = np.array([0, 1, 2, 0])
    data = _tensors(images, labels)
    net = create_model("cellnet", 3, SIZE, torch.Generator().manual_seed(1)).eval()
    x, _ = data.batch(torch.arange(len(labels)))
    with torch.no_grad():
        expected = torch.stack([torch.softmax(net(v), 1) for v in dihedral_views(x)]).mean(0)
    pred = evaluate(net, data, batch_size=3, tta=True)
    np.testing.assert_allclose(pred.probabilities, expected.numpy(), atol=1e-6)
    plain = evaluate(net, data, batch_size=3)
    assert not np.allclose(plain.probabilities, pred.probabilities)


def test_evaluate_and_predict_accept_tta(trained_run, tiny_h5, tmp_path):
    model = str(trained_run / "model.pt")
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["evaluate", model, str(tiny_h5), "--tta", str(out)])
    assert result.exit_code == 0, result.output
    assert "8-view TTA" in result.output
    assert json.loads((out / "metrics.json").read_text())["tta"] is True
    paths = _write_raw_folder(tmp_path / "raw", CLASSES)[:1]
    result = CliRunner().invoke(main, ["predict", model, "--tta", str(paths[0])])
    assert result.exit_code == 0 and result.output.count("\t") == 2, result.output


def _write_raw_folder(root: Path, classes: list[str]) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    sizes = [(40, 30), (64, 64), (100, 80)]
    for label, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            img = blob_images(np.array([label]), 64, rng)[0]
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            path = root / cls / f"img{i}.{'jpg' if i % 2 else 'png'}"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            paths.append(path)
    return paths


def test_evaluate_on_a_raw_image_folder(trained_run, tmp_path):
    raw = tmp_path / "raw"
    _write_raw_folder(raw, CLASSES)
    out = tmp_path / "eval"
    model = str(trained_run / "model.pt")
    result = CliRunner().invoke(main, ["evaluate", model, str(raw), str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["n"] == 9 and report["split"] is None
    assert report["originals"] is None  # a raw folder records no transforms


def test_evaluate_refuses_unknown_classes(trained_run, tmp_path):
    raw = tmp_path / "raw"
    _write_raw_folder(raw, ["ALL", "CLL"])
    result = CliRunner().invoke(main, ["evaluate", str(trained_run / "model.pt"), str(raw)])
    assert result.exit_code == 2
    assert "CLL" in result.output and "model's classes are ALL, AML, normal" in result.output


def test_evaluate_names_missing_split(trained_run, tiny_h5):
    args = ["evaluate", str(trained_run / "model.pt"), str(tiny_h5), "--subset", "holdout"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "'train', 'val', 'test', 'all'" in result.output


def test_predict_prints_class_and_probabilities(trained_run, tmp_path):
    paths = _write_raw_folder(tmp_path / "raw", CLASSES)[:2]
    result = CliRunner().invoke(main, ["predict", str(trained_run / "model.pt"), *map(str, paths)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    path, predicted, probs = lines[0].split("\t")
    assert path == str(paths[0]) and predicted in CLASSES
    values = {k: float(v) for k, v in (p.split("=") for p in probs.split())}
    assert list(values) == CLASSES and sum(values.values()) == pytest.approx(1.0, abs=2e-3)


class Exploit:
    """Unpickling this object would create a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("kind", ["text", "pickle", "plain-dict"])
def test_non_model_files_give_a_clear_error(tmp_path, kind):
    path = tmp_path / "model.pt"
    marker = tmp_path / "code-ran"
    if kind == "text":
        path.write_text("not a model\n")
    elif kind == "pickle":
        torch.save({"format": "augtool-model", "payload": Exploit(marker)}, path)
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(InputError, match="not an augtool model"):
        load_checkpoint(path)
    result = CliRunner().invoke(main, ["predict", str(path), str(path)])
    assert result.exit_code == 2 and "not an augtool model" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()


def test_a_raw_folder_is_read_only_by_the_reader_the_caller_passes(tmp_path: Path) -> None:
    from augtool import load_image_folder
    from model.data import load_for_evaluation

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        cv2.imwrite(str(tmp_path / cls / "x.png"), rng.integers(0, 255, (20, 30, 3), np.uint8))
    with pytest.raises(InputError, match="not an expand output"):
        load_for_evaluation(tmp_path, None, 16)
    data = load_for_evaluation(tmp_path, None, 16, read_folder=load_image_folder)
    assert data.images.shape == (2, 16, 16, 3) and data.class_names == ["a", "b"]
    assert data.attrs["source"] == "raw image folder"
