"""Messages that tell the truth: a file that is no model, --patience without val, near names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from augtool.errors import InputError
from cli import main
from model.data import align_labels
from tests.conftest import smear_like, write_image
from tests.h5data import make_blob_h5


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model")
    data = make_blob_h5(root / "d.h5", per_class=[8, 8, 8], size=32, seed=2, val_fraction=0.25)
    args = ["train", str(data), str(root / "run"), "--epochs", "1", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "-q"])
    assert result.exit_code == 0, result.output
    return root / "run" / "model.pt"


@pytest.mark.parametrize("kind", ["jpeg", "png", "text", "empty"])
def test_predict_with_the_model_forgotten_names_the_file_plainly(tmp_path: Path, kind: str):
    first = tmp_path / {"jpeg": "a.jpg", "png": "a.png", "text": "a.txt", "empty": "a.pt"}[kind]
    if kind in ("jpeg", "png"):
        write_image(first, smear_like(np.random.default_rng(0), 40, 30))
    else:
        first.write_text("" if kind == "empty" else "hello\n")
    second = tmp_path / "b.jpg"
    write_image(second, smear_like(np.random.default_rng(1), 40, 30))
    result = CliRunner().invoke(main, ["predict", str(first), str(second)])
    assert result.exit_code == 2, result.output
    assert f"{first} is not an augtool model (" in result.output
    what = {"jpeg": "a JPEG image", "png": "a PNG image", "text": "not a PyTorch zip archive"}
    assert what.get(kind, "an empty file") in result.output
    assert "weights_only" not in result.output and "Traceback" not in result.output


def test_predict_takes_a_run_folder_as_evaluate_does(model_file: Path, tmp_path: Path):
    image = tmp_path / "a.jpg"
    write_image(image, smear_like(np.random.default_rng(0), 40, 30))
    by_file = CliRunner().invoke(main, ["predict", str(model_file), str(image), "--device", "cpu"])
    run = model_file.parent
    by_run = CliRunner().invoke(main, ["predict", str(run), str(image), "--device", "cpu"])
    assert by_run.exit_code == 0 and by_file.exit_code == 0, by_run.output
    assert by_run.output == by_file.output  # not "run: no such model file"
    result = CliRunner().invoke(main, ["predict", str(tmp_path), str(image)])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path}: a folder without model.pt; give a run folder or its model.pt" in (
        result.output
    )


def test_predict_refuses_a_foreign_torch_file_without_torchs_advice(tmp_path: Path):
    import torch

    path = tmp_path / "other.pt"
    torch.save(np.zeros(3), path)  # numpy inside: torch's safe loader refuses it
    result = CliRunner().invoke(main, ["predict", str(path), str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path} is not an augtool model (" in result.output
    assert "weights_only" not in result.output and "Traceback" not in result.output


def test_patience_without_a_val_split_is_refused(tmp_path: Path):
    data = make_blob_h5(tmp_path / "d.h5", per_class=[6, 6, 6], size=32, seed=1)  # train/test
    run = tmp_path / "run"
    args = ["train", str(data), str(run), "--epochs", "2", "--patience", "1"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "--patience" in result.output and "val split" in result.output
    assert not run.exists()


def test_unknown_class_is_refused_with_the_near_match_suggested():
    data = SimpleNamespace(class_names=["ALL", "Normal", "monocyte"], labels=np.array([0, 1, 2]))
    with pytest.raises(InputError) as info:
        align_labels(data, ["ALL", "AML", "normal"])
    message = str(info.value)
    assert "Normal (did you mean normal?)" in message
    assert "monocyte that the model does not know" in message  # nothing near: no guess
    typo = SimpleNamespace(class_names=["nromal"], labels=np.array([0]))
    with pytest.raises(InputError, match=r"nromal \(did you mean normal\?\)"):
        align_labels(typo, ["ALL", "AML", "normal"])


def test_evaluate_on_a_folder_with_a_differently_cased_class(model_file: Path, tmp_path: Path):
    raw = tmp_path / "raw"
    for c, name in enumerate(["ALL", "AML", "Normal"]):
        write_image(raw / name / "x.jpg", smear_like(np.random.default_rng(c), 40, 30))
    result = CliRunner().invoke(main, ["evaluate", str(model_file), str(raw), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "Normal (did you mean normal?)" in result.output
