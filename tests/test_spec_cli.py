"""Specs and the CLI: every bad input is exit 2, a message naming field and value, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY, write_spec

import aebench
from aebench.spec import Spec

BAD = [
    # (what, spec text, words the message must contain)
    ("unknown top key", TINY + 'modle = { name = "stacked" }\n', ["modle: unknown key", "did you mean 'model'"]),
    (
        "unknown param key",
        TINY.replace("level = 0.2", "levle = 0.2"),
        ["corruption.levle: unknown key", "did you mean 'level'"],
    ),
    ("wrong type", TINY.replace("epochs = 2", 'epochs = "two"'), ["schedule.epochs = 'two'", "integer"]),
    (
        "out of range",
        TINY.replace('name = "gaussian", level = 0.2', 'name = "masking", level = 1.5'),
        ["corruption.level = 1.5", "less than or equal to 1"],
    ),
    (
        "unknown plug-in",
        TINY.replace('"gaussian"', '"gausian"'),
        ["corruption.name = 'gausian'", "Did you mean 'gaussian'"],
    ),
    ("unknown dataset", TINY.replace('"digits"', '"mnsit"'), ["data.name = 'mnsit'", "'mnist'"]),
    ("missing section", TINY.replace('model = { name = "stacked", layers = [32, 16] }\n', ""), ["model is required"]),
    ("bad optimizer", TINY.replace('"rmsprop"', '"adagrad"'), ["optimizer.name = 'adagrad'", "Did you mean 'adam'"]),
    ("negative lr", TINY.replace("lr = 0.01", "lr = -1"), ["optimizer.lr = -1", "greater than 0"]),
    ("bad seeds", TINY.replace("seeds = [0]", "seeds = [0, 0]"), ["seeds = [0, 0]", "repeat"]),
    (
        "bad sweep key value",
        TINY + '[sweep]\n"corruption.level" = [0.1, -0.5]\n',
        ["corruption.level = -0.5", "in sweep point"],
    ),
    ("bad sweep axis", TINY + '[sweep]\n"optimiser.lr" = [0.1]\n', ["optimiser", "not a spec key"]),
    (
        "zip lengths",
        TINY + '[sweep]\nmode = "zip"\n"optimizer.lr" = [0.1, 0.2]\n"corruption.level" = [0.1]\n',
        ["zip", "one length"],
    ),
    (
        "CE with tanh output",
        TINY.replace("layers = [32, 16]", 'layers = [32, 16], output_activation = "tanh"'),
        ["model", "cross-entropy", "[0, 1]"],
    ),
    ("TOML syntax", TINY.replace("epochs = 2 }", "epochs = 2"), ["not valid TOML", "line"]),
    (
        "sweep key's last segment",
        TINY + '[sweep]\n"corruption.levle" = [0.1]\n',
        ["corruption.levle: unknown key", "'level'"],
    ),
    ("sweep of a non-run key", TINY + '[sweep]\n"ensemble" = [true, false]\n', ["'ensemble' is not part of a run"]),
    (
        "[[runs]] key",
        TINY + "[[runs]]\noptimiser = { lr = 0.1 }\n",
        ["runs[0].optimiser.lr", "did you mean 'optimizer'"],
    ),
    ("ensemble type", "ensemble = 1\n" + TINY, ["ensemble = 1", "boolean"]),
    ("empty name", TINY.replace('name = "tiny"', 'name = ""'), ["name = ''", "at least 1 character"]),
    # issue 22: every leaf gets the top level's checks (list items, sweep values, [[runs]] values)
    ("bool in layers", TINY.replace("[32, 16]", "[true, 16]"), ["model.layers = [true, 16]: layers[0] = true"]),
    (
        "bool in corruption layers",
        TINY.replace("level = 0.2", "level = 0.2, layers = [true]"),
        ["corruption.layers", "layers[0] = true", "boolean"],
    ),
    (
        "layer of 2^70 units",
        TINY.replace("[32, 16]", "[1180591620717411303424]"),
        ["model.layers", "larger than any machine can hold"],
    ),
    ("layer too wide", TINY.replace("[32, 16]", "[32, 2000000]"), ["model.layers", "at most 1,048,576 units"]),
    ("weights too many", TINY.replace("[32, 16]", "[100000, 100000]"), ["model.layers", "4,294,967,296 weights"]),
    (
        "bool in a swept list",
        TINY + '[sweep]\n"model.layers" = [[8], [true, 4]]\n',
        ["in sweep point model.layers = [true, 4]", "layers[0] = true"],
    ),
    (
        "huge in [[runs]]",
        TINY + "[[runs]]\nmodel = { layers = [1180591620717411303424] }\n",
        ["model.layers", "larger than any machine can hold"],
    ),
    (
        "nested nan in [[runs]]",
        TINY + "[[runs]]\ncorruption = { level = nan }\n",
        ["corruption.level", "finite"],
    ),
    (
        "swept precision",
        TINY + '[sweep]\nprecision = ["float32", "float64"]\n',
        ["precision = 'float64'", "'float32', 'bfloat16' or 'float16'"],
    ),
    (
        "repeated sweep value",
        TINY + '[sweep]\n"optimizer.lr" = [0.01, 0.01]\n',
        ['sweep."optimizer.lr" = [0.01, 0.01]', "listed twice"],
    ),
    (
        "zero and minus zero",
        TINY + '[sweep]\n"corruption.level" = [0.0, -0.0]\n',
        ['sweep."corruption.level"', "0.0 and -0.0 are the same value"],
    ),
    (
        "int and float of one value",
        TINY + '[sweep]\n"schedule.epochs" = [1, 2, 1.0]\n',
        ['sweep."schedule.epochs"', "1 and 1.0 are the same value"],
    ),
    (
        "repeated zip row",
        TINY + '[sweep]\nmode = "zip"\n"optimizer.lr" = [0.1, 0.1]\n"corruption.level" = [0.1, 0.1]\n',
        ["sweep (zip) points 0 and 1 are the same point", "optimizer.lr = 0.1"],
    ),
    (
        "repeated [[runs]]",
        TINY + '[[runs]]\noptimizer = { lr = 0.1 }\n[[runs]]\n"optimizer.lr" = 0.1\n',
        ["[[runs]] entries 0 and 1 are the same point"],
    ),
    ("epochs bound", TINY.replace("epochs = 2", "epochs = 10000000"), ["schedule.epochs = 10000000", "100000"]),
    ("swept name", TINY + '[sweep]\nname = ["a", "b"]\n', ['sweep."name"', "names the experiment"]),
    ("empty runs", TINY + "runs = []\n", ["runs = []", "would run nothing"]),
]


@pytest.mark.parametrize("what,text,words", BAD, ids=[b[0] for b in BAD])
def test_bad_spec_exit_2_with_message_and_nothing_written(cli, tmp_path, what, text, words):
    spec = write_spec(tmp_path, text)
    for args in (["validate", spec], ["run", spec, "--out", tmp_path / "out", "--quiet"]):
        code, out, err = cli(*args)
        assert code == 2, (what, out, err)
        assert err.startswith("aebench: error: ") and "Traceback" not in err
        for word in words:
            assert word in err, (word, err)
    assert not (tmp_path / "out").exists()


def test_a_zip_may_repeat_a_value_on_one_axis():
    spec = Spec.from_text(
        TINY + '[sweep]\nmode = "zip"\n"optimizer.lr" = [0.1, 0.1]\n"corruption.level" = [0.1, 0.2]\n'
    )
    assert len(spec.runs) == 2


def test_missing_spec_file(cli, tmp_path):
    code, _, err = cli("run", tmp_path / "nope.toml", "--out", tmp_path / "out")
    assert code == 2 and f"spec file {tmp_path / 'nope.toml'} does not exist" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc")
def test_an_unreadable_spec_file_is_one_message(cli):
    code, _, err = cli("validate", "/proc/self/mem")  # a file whose read fails (EIO)
    assert code == 2 and err == "aebench: error: spec file /proc/self/mem cannot be read (Input/output error).\n"


def test_ce_on_unnormalised_data_is_refused_before_writing(cli, tmp_path):
    text = TINY.replace(
        'data = { name = "digits", subset = 300, eval_subset = 100 }',
        'data = { name = "mnist", subset = 100, eval_subset = 50, normalize = false }',
    )
    code, _, err = cli("run", write_spec(tmp_path, text), "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "cross-entropy" in err and "[0, 255]" in err
    assert not (tmp_path / "out").exists()


def test_validate_reports_run_count(cli, tmp_path):
    spec = write_spec(
        tmp_path,
        TINY.replace("seeds = [0]", "seeds = [0, 1, 2]") + '[sweep]\n"schedule.name" = ["joint", "layerwise"]\n',
    )
    code, out, _ = cli("validate", spec)
    assert code == 0 and "6 runs" in out and "schedule.name" in out


def test_grid_zip_and_explicit_runs_expand():
    grid = Spec.from_text(TINY + '[sweep]\n"schedule.name" = ["joint", "layerwise"]\n"corruption.level" = [0.1, 0.5]\n')
    assert [(r.point["schedule.name"], r.point["corruption.level"]) for r in grid.runs] == [
        ("joint", 0.1),
        ("joint", 0.5),
        ("layerwise", 0.1),
        ("layerwise", 0.5),
    ]
    assert grid.runs[1].corruptions[0].params.level == 0.5 and grid.runs[2].schedules[0].name == "layerwise"
    zipped = Spec.from_text(
        TINY + '[sweep]\nmode = "zip"\n"optimizer.lr" = [0.1, 0.2]\n"corruption.level" = [0.3, 0.4]\n'
    )
    assert [(r.optimizer.params.lr, r.corruptions[0].params.level) for r in zipped.runs] == [(0.1, 0.3), (0.2, 0.4)]
    explicit = Spec.from_text(TINY + '[[runs]]\nschedule = { name = "alpha" }\n[[runs]]\n"model.tied" = false\n')
    assert [r.schedules[0].name for r in explicit.runs] == ["alpha", "joint"]
    assert [r.model.params.tied for r in explicit.runs] == [True, False]


def test_corruption_list_is_one_per_layer_input():
    text = TINY.replace(
        'corruption = { name = "gaussian", level = 0.2 }',
        'corruption = [{ name = "masking", level = 0.3 }, { name = "gaussian", level = 0.1 }]',
    )
    run = Spec.from_text(text).runs[0]
    assert [(c.name, c.params.layers) for c in run.corruptions] == [("masking", [0]), ("gaussian", [1])]


def test_spec_round_trips_through_toml():
    spec = Spec.from_text(TINY + '[sweep]\n"corruption.level" = [0.1, 0.5]\n')
    again = Spec.from_text(spec.to_toml())
    assert again.raw == spec.raw and len(again.runs) == 2


def test_help_is_written_for_new_users(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "examples:" in out and "aebench run exp.toml --out runs/exp" in out


@pytest.mark.parametrize(
    "args, close",
    [(["rn"], "'run'"), (["valdate", "x.toml"], "'validate'"), (["data", "mkae", "rect"], "'make'")],
)
def test_a_mistyped_command_suggests_the_close_one(cli, args, close):
    code, _, err = cli(*args)
    assert code == 2 and f"did you mean {close}?" in err and "Traceback" not in err


def test_every_spec_error_is_reported_at_once(cli, tmp_path):
    """A missing name used to hide every other problem: now each is named, in one message."""
    text = TINY.replace('name = "tiny"\n', "").replace("subset = 300", "subst = 300").replace("layers =", "layer =")
    text = text.replace("epochs = 2", "epochs = 0") + '[sweep]\n"optimizer.lr" = [0.1, 0.2]\n'
    code, _, err = cli("validate", write_spec(tmp_path, text))
    assert code == 2 and err.count("aebench: error:") == 1 and "Traceback" not in err
    for field in ("name is required", "data.subst: unknown key", "model.layer: unknown key", "schedule.epochs = 0"):
        assert field in err, (field, err)
    assert "in sweep point" not in err  # a problem every point shares is said once, without a point
    unread = text + '[[report]]\nmetric = "svm_error"\npublished = "nowhere.csv"\ncolumns = { J = { x = 1 } }\n'
    code, _, err = cli("validate", write_spec(tmp_path, unread, "unread.toml"))
    assert code == 2 and "nowhere.csv" in err and "name is required" in err and "model.layer: unknown key" in err
    one_point = TINY + '[sweep]\n"optimizer.lr" = [0.1, -1.0]\n'
    with pytest.raises(aebench.SpecError, match="in sweep point optimizer.lr = -1.0: optimizer.lr = -1.0"):
        Spec.from_text(one_point)


def test_validate_on_a_folder_says_so_and_names_its_spec(cli, tmp_path, tiny_spec):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("validate", empty)
    assert code == 2 and f"{empty} is a folder, not a spec file" in err and "does not exist" not in err
    out = tmp_path / "results"
    out.mkdir()
    (out / "spec.toml").write_text(tiny_spec.read_text())
    code, _, err = cli("validate", out)
    assert code == 2 and f"it holds a spec: {out / 'spec.toml'}" in err


def test_run_ends_with_a_summary_whose_pm_is_the_reports(cli, tmp_path):
    """Per cell, the main metrics with their ± and what it is; the same numbers and words as the report."""
    spec = write_spec(
        tmp_path,
        TINY.replace("seeds = [0]", "seeds = [0, 1]\nevaluate = { recon = { every = 0 }, svm = { C = [1.0] } }")
        + '[sweep]\n"schedule.name" = ["joint", "layerwise"]\n',
    )
    out = tmp_path / "out"
    code, stdout, err = cli("run", spec, "--out", out, "--quiet")
    assert code == 0, err
    lines = stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("cell "))
    assert header.split() == ["cell", "recon_test", "svm_error", "train_seconds"]
    assert "svm_error: Linear SVM test error (%)" in stdout
    assert "every ±: mean ± 95% t-interval over 2 seeds" in stdout
    assert lines[-1] == f"tables and figures: aebench report {out}"
    joint = next(ln for ln in lines if ln.startswith("schedule=joint "))
    svm_cell = " ".join(joint.split()[4:7])  # recon_test's "m ± c", then svm_error's
    code, again, _ = cli("report", out)
    assert code == 0 and joint in again.splitlines()  # `aebench report` prints the same summary
    md = (out / "report.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| tiny |") and svm_cell in ln)
    svm = md[md.index("## Linear SVM test error (%)") :]
    assert row in svm and "mean ± 95% t-interval over 2 seeds" in svm.split("##")[1]
    assert "| experiment | schedule=joint | schedule=layerwise |" in svm


def test_run_twice_into_one_folder_keeps_results(cli, tmp_path, tiny_spec):
    out = tmp_path / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0
    before = (out / "results.nc").read_bytes()
    code, _, err = cli("run", tiny_spec, "--out", out, "--quiet")
    assert code == 2 and "--resume" in err
    other = write_spec(tmp_path, TINY.replace("epochs = 2", "epochs = 3"), "other.toml")
    code, _, err = cli("run", other, "--out", out, "--quiet")
    assert code == 2 and "another spec" in err
    assert (out / "results.nc").read_bytes() == before
    code, out_text, _ = cli("run", tiny_spec, "--out", out, "--quiet", "--resume")
    assert code == 0 and "1 of 1 runs done" in out_text


def test_api_raises_spec_error(tmp_path):
    with pytest.raises(aebench.SpecError, match="schedule.epochs = 0"):
        Spec.from_text(TINY.replace("epochs = 2", "epochs = 0"))


def test_dotted_keys_through_scalars_are_errors_and_optimizer_shorthand_works():
    with pytest.raises(aebench.SpecError, match="sweep key 'description.x': description is not a table"):
        Spec.from_text('description = "d"\n' + TINY + '[sweep]\n"description.x" = [1]\n')
    spec = Spec.from_text(
        TINY.replace('optimizer = { name = "rmsprop", lr = 0.01, batch_size = 50 }', 'optimizer = "adam"')
        + '[sweep]\n"optimizer.lr" = [0.1, 0.2]\n'
    )
    assert [(r.optimizer.name, r.optimizer.params.lr) for r in spec.runs] == [("adam", 0.1), ("adam", 0.2)]


def test_the_top_level_is_one_typed_model_shared_by_cli_and_workbench():
    """Keys, defaults and options come from SpecModel / aebench.options, not from lists kept by hand."""
    from aebench import cli, options
    from aebench.spec import DEFAULTS, REQUIRED, TOP_KEYS, SpecModel

    assert TOP_KEYS == set(SpecModel.model_fields)
    assert set(REQUIRED) == {"name", "data", "model", "schedule"}
    assert DEFAULTS["optimizer"] == SpecModel.model_fields["optimizer"].default
    parser = cli.build_parser()._subparsers._group_actions[0].choices["run"]
    run = next(a for a in parser._actions if a.dest == "device")
    assert run.type is options.device  # the names of options.DEVICES, or cuda:K
    assert [options.device(d) for d in options.DEVICES] == list(options.DEVICES)
    assert SpecModel.model_json_schema()["properties"]["precision"]["enum"] == list(options.PRECISIONS)
