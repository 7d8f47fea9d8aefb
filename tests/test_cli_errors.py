"""A user's mistakes end with one short line naming the culprit, a non-zero exit, no traceback, no partial file."""

import gzip
import json

from conftest import si64_file, tiny_input

from deepcharge.cli import main


def run_failing(capsys, argv, *culprits):
    """Run the command line; it must fail with a one-line message naming every culprit."""
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error message"
    message = err[-1]
    assert "Traceback" not in "\n".join(err)
    assert "error" in message
    for culprit in culprits:
        assert str(culprit) in message, message
    return message


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def si64_lines():
    with gzip.open(si64_file(1), "rt") as handle:
        return handle.read().splitlines()


def test_missing_density_file(workdir, capsys):
    config = json.loads(tiny_input(workdir).read_text())
    config["training"]["training_data"]["systems"] = ["nowhere/si64_9.CHGCAR"]
    (workdir / "input.json").write_text(json.dumps(config))
    run_failing(capsys, ["train", "input.json"], "nowhere/si64_9.CHGCAR")


def test_truncated_density_file(workdir, capsys, frozen_model):
    lines = si64_lines()
    truncated = write_lines(workdir / "truncated.CHGCAR", lines[: len(lines) // 2])
    run_failing(capsys, ["test", "-m", str(frozen_model), "-s", str(truncated)], "truncated.CHGCAR")


def test_garbled_density_file(workdir, capsys, frozen_model):
    lines = si64_lines()
    lines[3] = "  0.0  banana  10.862"
    garbled = write_lines(workdir / "garbled.CHGCAR", lines)
    run_failing(capsys, ["test", "-m", str(frozen_model), "-s", str(garbled)], "garbled.CHGCAR")


def test_unreadable_structure_says_what_is_expected(workdir, capsys, frozen_model):
    structure = write_lines(workdir / "structure.txt", ["not a structure", "1 2"])
    message = run_failing(capsys, ["predict", "-m", str(frozen_model), "-s", str(structure), "-o", "rho.cube",
                                   "--grid", "8", "8", "8"], "structure.txt")
    assert "expected a density file" in message
    assert not (workdir / "rho.cube").exists()


def test_nan_in_density(workdir, capsys, frozen_model):
    lines = si64_lines()
    header_end = next(i for i, line in enumerate(lines) if line.split() == ["64", "64", "64"])
    values = lines[header_end + 10].split()
    values[2] = "NaN"
    lines[header_end + 10] = " ".join(values)
    bad = write_lines(workdir / "nan.CHGCAR", lines)
    message = run_failing(capsys, ["test", "-m", str(frozen_model), "-s", str(bad)], "nan.CHGCAR")
    assert "nan" in message.lower()


def test_unknown_input_key(workdir, capsys):
    config = json.loads(tiny_input(workdir).read_text())
    config["training"]["numb_step"] = config["training"].pop("numb_steps")
    (workdir / "input.json").write_text(json.dumps(config))
    run_failing(capsys, ["train", "input.json"], "input.json", "numb_step", "numb_steps")
    assert not (workdir / "out.json").exists()


def test_input_key_in_the_wrong_section_says_where_it_belongs(workdir, capsys):
    config = json.loads(tiny_input(workdir).read_text())
    config["fitting_net"] = config["model"].pop("fitting_net")
    config["model"]["descriptor"]["start_lr"] = 1e-3
    (workdir / "input.json").write_text(json.dumps(config))
    message = run_failing(capsys, ["train", "input.json"], "input.json", "`fitting_net` at the top level",
                          "belongs in `model`")
    assert "did you mean `fitting_net`" not in message
    del config["fitting_net"]
    (workdir / "input.json").write_text(json.dumps(config))
    run_failing(capsys, ["train", "input.json"], "`start_lr` in `model.descriptor`", "belongs in `learning_rate`")


def test_mistyped_input_value(workdir, capsys):
    config = json.loads(tiny_input(workdir).read_text())
    config["model"]["descriptor"]["rcut"] = "six"
    (workdir / "input.json").write_text(json.dumps(config))
    run_failing(capsys, ["train", "input.json"], "rcut")


def test_value_of_a_key_with_several_types_is_one_line(workdir, capsys):
    config = json.loads(tiny_input(workdir).read_text())
    config["training"]["time_budget"] = "ten"
    (workdir / "input.json").write_text(json.dumps(config))
    run_failing(capsys, ["train", "input.json"], "time_budget", "<float|int|NoneType>")


def test_invalid_yaml(workdir, capsys):
    (workdir / "input.yaml").write_text("model:\n  type_map: [Si\n")
    run_failing(capsys, ["train", "input.yaml"], "input.yaml", "line")


def test_missing_model_file(workdir, capsys):
    run_failing(capsys, ["test", "-m", "absent.pth", "-s", str(si64_file(1))], "absent.pth")


def test_not_a_model_file(workdir, capsys):
    (workdir / "fake.pth").write_text("hello")
    run_failing(capsys, ["predict", "-m", "fake.pth", "-s", str(si64_file(1)), "-o", "out.cube"], "fake.pth")
    assert not (workdir / "out.cube").exists()


def test_unknown_species(workdir, capsys, frozen_model):
    write_lines(workdir / "water.xyz", ["3", 'Lattice="6 0 0 0 6 0 0 0 6" Properties=species:S:1:pos:R:3 pbc="T T T"',
                                        "O 0 0 0", "H 0.96 0 0", "H -0.24 0.93 0"])
    message = run_failing(capsys, ["predict", "-m", str(frozen_model), "-s", "water.xyz", "-o", "water.cube",
                                   "--grid", "4", "4", "4"], "water.xyz")
    assert "H" in message and "O" in message
    assert not (workdir / "water.cube").exists()


def test_unwritable_output(workdir, capsys, frozen_model):
    run_failing(capsys, ["predict", "-m", str(frozen_model), "-s", str(si64_file(1)), "-o",
                         "no/such/dir/out.CHGCAR"], "no/such/dir/out.CHGCAR")
    assert not (workdir / "no").exists()


def test_structure_without_grid_needs_one(workdir, capsys, frozen_model):
    write_lines(workdir / "POSCAR", ["Si2", "1.0", "5.43 0 0", "0 5.43 0", "0 0 5.43", "Si", "2", "Direct",
                                     "0 0 0", "0.25 0.25 0.25"])
    run_failing(capsys, ["predict", "-m", str(frozen_model), "-s", "POSCAR", "-o", "si.cube"], "POSCAR", "--grid")
    assert main(["predict", "-m", str(frozen_model), "-s", "POSCAR", "-o", "si.cube", "--spacing", "0.5"]) == 0
    assert (workdir / "si.cube").is_file()


def test_plot_refuses_what_is_not_a_curve_or_detail_file(workdir, capsys):
    commented_yaml = write_lines(workdir / "input.yaml", ["# my input", "model:", "  type: pseudo_atom",
                                                          "training: {numb_steps: 10}"])
    for path in (commented_yaml, si64_file(1)):
        message = run_failing(capsys, ["plot", str(path), "-o", "bad.png"], path.name)
        assert "lcurve.out" in message and "test -d" in message
    assert not (workdir / "bad.png").exists()


def test_checkpoint_and_frozen_model_are_told_apart(workdir, capsys):
    input_file = tiny_input(workdir, numb_steps=2)
    assert main(["train", str(input_file)]) == 0
    assert main(["freeze", "-o", "frozen.pth"]) == 0
    capsys.readouterr()
    message = run_failing(capsys, ["test", "-m", "model.ckpt.pt", "-s", str(si64_file(1))], "model.ckpt.pt")
    assert "deepcharge freeze -c model.ckpt.pt" in message
    message = run_failing(capsys, ["train", str(input_file), "--restart", "frozen.pth"], "frozen.pth")
    assert "a frozen model, not a training checkpoint" in message
