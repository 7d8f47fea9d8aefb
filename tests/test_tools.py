"""Analysis scripts in tools/ that are not benchmarks: they run on the shipped data and give sane numbers."""

import json
import subprocess
import sys

from conftest import REPO, si64_file, tiny_input


def test_baseline_transfer_fits_each_snapshot_and_all(workdir):
    config = json.loads(tiny_input(workdir).read_text())
    config["model"]["descriptor"]["three_body"] = {"rcut": 3.5, "sel": [16], "num_radial": 4, "lmax": 2}
    config["model"]["fitting_net"]["baseline_three_body"] = True
    (workdir / "input.json").write_text(json.dumps(config))
    command = [sys.executable, str(REPO / "tools" / "baseline_transfer.py"), "-i", "input.json",
               "-s", str(si64_file(0)), str(si64_file(1)), "-n", "6000", "--json", "transfer.json"]
    subprocess.run(command, check=True, capture_output=True)
    rows = json.loads((workdir / "transfer.json").read_text())["rows"]
    assert [row["fitted_on"] for row in rows] == ["si64_0", "si64_1", "all"]
    for row in rows:
        assert set(row["eps_mae_percent"]) == {"si64_0", "si64_1"}
        # radial profiles and three-body terms explain Si64 to about a percent; the mean alone is at 84 %
        assert all(0.05 < value < 2.0 for value in row["eps_mae_percent"].values())


def test_data_efficiency_trains_each_count_and_marks_what_it_saw(workdir):
    tiny_input(workdir, numb_steps=4)
    command = [sys.executable, str(REPO / "tools" / "data_efficiency.py"), "-i", "input.json",
               "--train", str(si64_file(0)), str(si64_file(1)), "--counts", "1", "2",
               "--test", str(si64_file(1)), str(si64_file(2)), "-n", "3000", "--json", "efficiency.json"]
    subprocess.run(command, check=True, capture_output=True)
    result = json.loads((workdir / "efficiency.json").read_text())
    assert [run["snapshots"] for run in result["runs"]] == [1, 2]
    assert [run["trained_on"] for run in result["runs"]] == [["si64_0"], ["si64_0", "si64_1"]]
    assert [run["test"]["si64_1"]["seen_in_training"] for run in result["runs"]] == [False, True]
    assert result["held_out_of_every_run"] == ["si64_2"]
    for run in result["runs"]:
        assert (workdir / "data_efficiency" / f"train_{run['snapshots']}" / "frozen_model.pth").is_file()
        # four steps of a tiny model on a radial baseline: between the baseline's ~1 % and the mean's 84 %
        assert all(0.1 < score["eps_mae_percent"] < 60 for score in run["test"].values())
