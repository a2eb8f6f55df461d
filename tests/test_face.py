"""The command line is a thin face: library decisions live in the library.

The Python API and the CLI behave the same (defaults, the dry run's warnings,
the count tables), library errors name Python parameters and the face maps
them to the running command's flags in one place, every choice and shown
default comes from :mod:`augtool.defaults`, and help and option errors never
pay for torch, OpenCV or h5py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from augtool import defaults
from augtool.commands.exit_codes import flag_name, render_error
from augtool.commands.summary import counts_table
from augtool.defaults import sort_splits
from augtool.engine.dry_run import dry_run
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions, options_from_values
from augtool.errors import OptionError, OutputError
from cli import main
from tests.reporters import Recorder

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "cv2", "h5py")


def _child(args: list[str]) -> dict:
    """Run ``augtool ARGS`` in a fresh interpreter; its exit code and heavy imports."""
    code = (
        "import json, sys\n"
        "from cli import main\n"
        "try:\n"
        f"    main({args!r}, prog_name='augtool')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- lean imports ------------------------------------------------------------------------


def test_help_of_every_command_imports_no_torch_opencv_or_h5py() -> None:
    for command in ["", *sorted(main.commands)]:
        result = _child([command, "--help"] if command else ["--help"])
        assert result == {"code": 0, "heavy": []}, command


@pytest.mark.parametrize(
    "args",
    [
        ["train", "{data}", "{out}", "--epochs", "0"],
        ["train", "{data}", "{out}", "--arch-option", "conv9=3"],
        ["train", "{data}", "{out}", "--augment", "sideways"],
        ["train", "{data}", "{out}", "--fold", "x"],
        ["train", "{data}", "{out}", "--resume"],
        ["train", "{data}", "{out}", "--max-memory", "lots"],
        ["evaluate", "{data}", "{data}", "--batch-size", "0"],
        ["evaluate", "{data}", "{data}", "--device", "gpu"],
        ["predict", "{data}", "{data}", "--device", "tpu"],
    ],
)
def test_option_errors_of_the_model_commands_come_before_torch(
    tmp_path: Path, args: list[str]
) -> None:
    data = tmp_path / "data.h5"
    data.write_bytes(b"not read: the options fail first")
    filled = [a.format(data=data, out=tmp_path / "run") for a in args]
    assert _child(filled) == {"code": 2, "heavy": []}
    assert not (tmp_path / "run").exists()


# --- options whose defaults resolve in the library ----------------------------------------


def test_factor_alone_works_through_the_api(make_raw, tmp_path: Path) -> None:
    raw = make_raw()  # 12 sources
    options = ExpandOptions(factor=2.0, size=16, workers=1)
    assert options.target is None
    summary = expand(raw, tmp_path / "out", options)
    assert summary.total == 24
    assert ExpandOptions().target == defaults.DEFAULT_TARGET
    with pytest.raises(OptionError) as err:
        ExpandOptions(target=30, factor=2.0).validate()
    assert err.value.option == "target" and str(err.value).startswith("target: give target")


def test_options_from_values_builds_ranges_pca_and_recipe() -> None:
    options = options_from_values(
        {"pca": True, "pca_std": 0.25, "rotate_range": (-10, 10), "transforms": "rotate,gray"}
    )
    assert options.pca_count == defaults.DEFAULT_PCA_COUNT and options.pca.std == 0.25
    assert options.pipeline.names == ("rotate", "gray") and not options.recipe_named
    assert options.paper_ranges().rotate_range == (-10, 10)
    assert options.paper_ranges().sigma_range == defaults.DEFAULT_SIGMA_RANGE
    assert options_from_values({"pca_count": 5}).pca_count == 5
    assert options_from_values({}).pca_count == 0
    assert options_from_values({"recipe": "colour"}).pipeline.name == "colour"
    detection = options_from_values({"output_format": "voc", "annotations": "ann/"})
    assert (detection.annotation_format, detection.output_format) == ("voc", "folder")
    for values, option in (
        ({"recipe": "colour", "transforms": "gray"}, "transforms"),
        ({"colour": 1}, "colour"),
        ({"target": 10, "factor": 2.0}, "target"),
    ):
        with pytest.raises(OptionError) as err:
            options_from_values(values)
        assert err.value.option == option


# --- the dry run shares scan, scan report and plan with the real run -----------------------


def _raw_with_warnings(make_raw) -> Path:
    raw = make_raw()
    (raw / "ALL" / "notes.txt").write_text("not an image")
    shutil.copy(raw / "ALL" / "ALL_000.jpg", raw / "AML" / "copy.jpg")
    return raw


def test_dry_run_warns_as_the_real_run_and_plans_the_same(make_raw, tmp_path: Path) -> None:
    raw = _raw_with_warnings(make_raw)
    options = ExpandOptions(target=40, size=16, workers=1, split="0.5,0.5")
    planned, real = Recorder(), Recorder()
    plan = dry_run(raw, options, planned)
    summary = expand(raw, tmp_path / "out", options, real)
    assert planned.warnings == real.warnings
    assert any("ignored 1 file(s)" in w for w in planned.warnings)
    assert any("identical files in DIFFERENT classes" in w for w in planned.warnings)
    assert plan.counts == summary.counts and plan.total == summary.total == 40
    assert {split for split, _ in plan.counts} == {"train", "test"}  # two values: train,test


def test_cli_dry_run_prints_the_warnings_and_the_plan(make_raw, tmp_path: Path) -> None:
    raw = _raw_with_warnings(make_raw)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["expand", str(raw), str(out), "--target", "40", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "warning: ignored 1 file(s) without an image suffix" in result.stderr
    assert "warning: identical files in DIFFERENT classes" in result.stderr
    assert result.stdout.startswith("plan: 40 images from 13 sources (nothing written)")
    assert not out.exists()


# --- errors name parameters; the face names flags, in one place -------------------------


def test_library_errors_name_parameters_and_the_cli_names_flags(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    with pytest.raises(OptionError) as err:
        ExpandOptions(size=3).validate()
    assert str(err.value).startswith("size: ") and "--" not in str(err.value)
    runner = CliRunner()
    cases = [
        (["--size", "3"], "Error: --size: must be between 8 and 4096, got 3"),
        (["--size", "64x32", "--format", "hdf5"], "Error: --size: HDF5 output is square"),
        (["--annotation-format", "voc"], "Error: --annotation-format: voc needs --annotations"),
        (["--folds", "3", "--split-by", "image"], "Error: --folds: needs --split-by source"),
        (["--target", "30", "--factor", "2"], "Error: --target: give --target or --factor"),
    ]
    for args, message in cases:
        result = runner.invoke(main, ["expand", str(raw), str(tmp_path / "o"), *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_synth_existing_output_names_the_flag_not_a_python_keyword(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "x").write_text("x")
    result = CliRunner().invoke(main, ["synth", str(out), "--per-class", "ALL=1"])
    assert result.exit_code == 2 and "pass --overwrite" in result.output
    assert "overwrite=True" not in result.output
    from augtool.tools.synth import synthesize

    with pytest.raises(OutputError) as err:
        synthesize(out, per_class={"ALL": 1})
    assert str(err.value).endswith("pass overwrite")


def test_flag_name_reads_the_command_s_own_parameters() -> None:
    expand_command = main.commands["expand"]
    assert flag_name(expand_command, "pca_std") == "--pca-std"
    assert flag_name(expand_command, "annotation_format") == "--annotation-format"
    assert flag_name(main.commands["evaluate"], "split") == "--subset"  # LibraryOption
    assert flag_name(expand_command, "height") == "--size"
    assert flag_name(expand_command, "timeout") == "--scheduler-timeout"  # DaskBackend's
    assert flag_name(expand_command, "out") == "OUT"  # an argument: its metavar
    assert flag_name(expand_command, "plugin_root") == "plugin_root"  # not an option here
    assert flag_name(main.commands["verify"], "regenerate_raw") == "--regenerate"
    assert flag_name(main.commands["cells"], "format") == "--annotation-format"
    assert flag_name(None, "seed") == "seed"
    err = OptionError("pca_scale", "unit and byte are legacy scales of {pca_mode} shift", refs=True)
    assert str(err) == "pca_scale: unit and byte are legacy scales of pca_mode shift"
    assert render_error(err, expand_command) == (
        "--pca-scale: unit and byte are legacy scales of --pca-mode shift"
    )


# --- choices and defaults come from the library -------------------------------------------


def _library_tuples() -> list[tuple]:
    from model.archs import list_models

    found = [v for v in vars(defaults).values() if isinstance(v, tuple)]
    return [*found, tuple(list_models()), defaults.OUTPUT_FORMATS + defaults.ANNOTATION_FORMATS]


def test_every_choice_of_every_command_is_a_library_list() -> None:
    allowed = _library_tuples()
    seen = 0
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param.type, click.Choice):
                seen += 1
                assert tuple(param.type.choices) in allowed, (name, param.name)
    assert seen >= 15


def test_shown_defaults_are_the_library_s() -> None:
    import augtool.tools.preview as preview
    from augtool.tools.cells import CellOptions
    from model.archs import ARCHS

    expand_params = {p.name: p for p in main.commands["expand"].params}
    options = ExpandOptions()
    assert expand_params["max_pixels"].default == options.max_pixels == defaults.MAX_PIXELS
    assert expand_params["pca_std"].default == options.pca.std
    assert expand_params["jpeg_quality"].default == options.jpeg_quality
    assert str(options.target) in expand_params["target"].help
    assert str(defaults.DEFAULT_PCA_COUNT) in expand_params["pca_count"].help
    cells_params = {p.name: p for p in main.commands["cells"].params}
    assert cells_params["window"].default == CellOptions().window
    assert str(preview.DEFAULT_COLUMNS) in next(
        p.help for p in main.commands["preview"].params if p.name == "columns"
    )
    train_help = CliRunner().invoke(main, ["train", "--help"]).output
    for name, info in ARCHS.items():
        assert name in train_help and info.summary.split(":")[0] in train_help
        assert f"{info.training['lr']} {name}" in " ".join(train_help.split())


def test_split_help_tells_the_two_value_form() -> None:
    help_text = " ".join(CliRunner().invoke(main, ["expand", "--help"]).output.split())
    assert "train,test (0.7,0.3)" in help_text and "train,val,test" in help_text


# --- terminal-free reports ---------------------------------------------------------------


def test_counts_table_orders_splits_train_val_test() -> None:
    assert sort_splits(["test", "val", "fold 1", "train", "test"]) == [
        "train",
        "val",
        "test",
        "fold 1",
    ]
    table = counts_table({("test", "a"): 1, ("train", "a"): 3, ("val", "b"): 2}, ["a", "b"])
    rows = [line.split()[0] for line in table.splitlines()[1:]]
    assert rows == ["train", "val", "test", "total"]
    assert table.splitlines()[-1].split() == ["total", "4", "2", "6"]
