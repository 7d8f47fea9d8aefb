"""``deepcharge compare``: the same numbers as ``deepcharge test``, every promised file, -i end to end, user errors."""

import json

import numpy as np
import pytest
from conftest import si64_file, tiny_input

from deepcharge.cli import main
from deepcharge.entrypoints import compare
from deepcharge.entrypoints.test import run_test
from deepcharge.io import write_density
from deepcharge.snapshot import Snapshot
from deepcharge.train.checkpoint import load_checkpoint
from deepcharge.utils import working_directory

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BACKENDS = ("pseudo_atom", "atom_centred", "schnet")
METRICS = ("eps_mae_percent", "mae", "rmse", "max_abs_error", "electrons_ref", "electrons_pred", "points")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{backend: directory it was trained in, holding model.pth}, tiny models of three backends."""
    folders = {}
    for backend in BACKENDS:
        folder = folders[backend] = tmp_path_factory.mktemp(backend)
        with working_directory(folder):
            assert main(["train", str(tiny_input(folder, backend, numb_steps=5))]) == 0
            assert main(["freeze", "-o", "model.pth"]) == 0
    return folders


def test_compare_matches_test(workdir, trained):
    models = [str(trained[backend] / "model.pth") for backend in BACKENDS]
    systems = [str(si64_file(1)), str(si64_file(2))]
    assert main(["compare", "-m", *models, "-s", *systems, "-n", "2000", "--seed", "3", "--plane", "xz",
                 "--position", "0.4", "-c", *(str(trained[backend]) for backend in BACKENDS)]) == 0
    out = workdir / "compare"
    for name in ("parity.png", "error_hist.png", "slice.png", "lcurve.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == systems and summary["points_per_file"] == [2000, 2000]
    table = (out / "summary.md").read_text()
    for backend, entry in zip(BACKENDS, summary["models"]):
        assert entry["model"] == str(trained[backend] / "model.pth") and entry["backend"] == backend
        assert entry["training_steps"] == 5 and entry["parameters"] > 0 and entry["probes_per_second"] > 0
        assert f"| {backend} |" in table
        expected = run_test(entry["model"], systems, numb_points=2000, device="cpu", seed=3)
        for got, want in zip([entry["overall"], *entry["files"]], [expected["overall"], *expected["files"]]):
            for key in METRICS if got is not entry["overall"] else METRICS[:4] + METRICS[6:]:
                assert got[key] == pytest.approx(want[key], rel=1e-6), key
        assert "electrons_ref" not in entry["overall"]  # the files' counts do not add up to one
    assert summary["models"][0]["hyperparameters"]["fitting_neuron"] == [16, 16]
    assert summary["models"][1]["hyperparameters"]["neuron"] == [4, 8]  # atom_centred
    assert summary["models"][2]["hyperparameters"]["num_interactions"] == 2


def test_compare_trains_inputs(workdir, capsys):
    inputs = [str(tiny_input(workdir, backend, numb_steps=3).rename(workdir / f"{backend}.json"))
              for backend in BACKENDS]
    argv = ["compare", "-i", *inputs, "-s", str(si64_file(2)), "-n", "500", "--seed", "5", "-o", "cmp"]
    assert main(argv) == 0
    summary = json.loads((workdir / "cmp" / "summary.json").read_text())
    for backend, entry in zip(BACKENDS, summary["models"]):
        folder = workdir / "cmp" / f"train_{backend}"
        assert entry["model"] == str(folder.relative_to(workdir) / "frozen_model.pth")
        best = load_checkpoint(str(folder / "model.ckpt-best.pt"))["step"]
        assert entry["steps_run"] == 3 and entry["training_steps"] == best  # frozen from the best checkpoint
        assert entry["probe_passes"] == 3 * 64
        assert json.loads((folder / "out.json").read_text())["training"]["seed"] == 5
    for name in ("lcurve.png", "accuracy_speed.png"):
        assert (workdir / "cmp" / name).read_bytes()[:8] == PNG_MAGIC

    # a rerun takes the frozen models as they are; a changed input is refused, naming its folder
    frozen = workdir / "cmp" / "train_schnet" / "frozen_model.pth"
    before = frozen.stat().st_mtime_ns
    assert main(argv) == 0
    assert frozen.stat().st_mtime_ns == before
    assert main([*argv[:-1], "cmp", "--budget", "0.5"]) == 1
    assert "train_pseudo_atom holds a training of another version" in capsys.readouterr().err

    # the studies side by side
    assert main(["compare", "-r", "cmp", "cmp", "-o", "studies"]) == 0
    assert (workdir / "studies" / "accuracy_speed.png").read_bytes()[:8] == PNG_MAGIC
    assert "| cmp | train_schnet | schnet |" in (workdir / "studies" / "studies.md").read_text()


def test_compare_continues_an_interrupted_training(workdir, monkeypatch):
    input_file = str(tiny_input(workdir, numb_steps=20).rename(workdir / "pa.json"))
    argv = ["compare", "-i", input_file, "-s", str(si64_file(2)), "-n", "200", "-o", "cmp"]
    folder = workdir / "cmp" / "train_pa"
    original = compare.train_config

    def killed(config, base_dir, restart=None):
        with working_directory("."):  # as far as the checkpoint at step 10
            config = {**config, "training": {**config["training"], "numb_steps": 10}}
            original(config, base_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "train_config", killed)
    assert main(argv) != 0  # interrupted
    monkeypatch.setattr(compare, "train_config", original)
    assert load_checkpoint(str(folder / "model.ckpt.pt"))["step"] == 10
    assert main(argv) == 0
    steps = np.genfromtxt(folder / "lcurve.out", names=True)["step"].tolist()
    assert steps == [0, 5, 10, 15, 20]  # continued from step 10, not started again


def test_compare_user_errors(workdir, trained, capsys):
    model = str(trained["pseudo_atom"] / "model.pth")
    cell = np.eye(3) * 5.0
    write_density("si_o.cube", Snapshot(symbols=["Si", "O"], positions=np.array([[0, 0, 0], [1.5, 0, 0]]),
                                        cell=cell, density=np.full((4, 4, 4), 0.1)))
    for argv, culprit in ((["-m", "-s", str(si64_file(1))], "-m"), (["-m", model, "-s"], "-s")):
        with pytest.raises(SystemExit):  # the parser wants at least one of each
            main(["compare", *argv])
        message = capsys.readouterr().err.strip().splitlines()[-1]
        assert message.startswith("deepcharge compare: error:") and culprit in message, message
    cases = [(["-m", model, "absent.pth", "-s", str(si64_file(1))], "absent.pth"),
             (["-m", model, "-s", str(si64_file(1)), "-c", "a", "b"], "-c"),
             (["-m", model, "-s", "si_o.cube"], f"model {model} cannot handle si_o.cube: species O")]
    for argv, culprit in cases:
        assert main(["compare", *argv]) == 1
        message = capsys.readouterr().err.strip().splitlines()[-1]
        assert message.startswith("deepcharge compare: error:") and culprit in message, message
    assert not (workdir / "compare").exists()


def test_parity_plot_gives_each_model_its_own_panel(monkeypatch, tmp_path):
    from deepcharge.analysis import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, output: figures.append(fig))
    reference = np.linspace(0.0, 0.1, 1000)
    plots.plot_model_parity(reference, {"a": reference * 1.01, "b": reference * 0.98}, tmp_path / "parity.png")
    (figure,) = figures
    assert [ax.get_title().split(" ")[0] for ax in figure.axes] == ["a", "b"]
    assert all(len(ax.collections) == 1 for ax in figure.axes)  # one scatter each: no model hides another


def test_learning_curve_ticks_over_a_narrow_range_are_plain_numbers(monkeypatch, tmp_path):
    from deepcharge.analysis import plots

    lcurve = tmp_path / "lcurve.out"
    lcurve.write_text("# step eps_mae_val eps_mae_trn lr wall_s\n"
                      + "".join(f"{step} {0.52 - step * 1e-4} {0.47 - step * 1e-4} 1e-3 {step / 10}\n"
                                for step in range(0, 1501, 250)))
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, output: figures.append(fig))
    plots.plot_lcurves([str(lcurve)], str(tmp_path / "lcurve.png"))
    (figure,) = figures
    figure.canvas.draw()
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels(which="both") if t.get_text()]
    assert labels and all(label.replace(".", "").isdigit() for label in labels), labels
