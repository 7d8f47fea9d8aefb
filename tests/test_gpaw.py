"""Starting GPAW from a prediction, against a real GPAW 22.8 (Debian's, run in the interpreter that has it).

GPAW must be importable somewhere (see ``deepcharge.interfaces.gpaw.gpaw_python``; ``.ci/run`` installs it): these
tests fail when it is not, unless DEEPCHARGE_SKIP_GPAW=1 is set outside CI.
"""


import ase.build
import numpy as np
import pytest
from conftest import si64_file

from deepcharge.cli import main
from deepcharge.errors import DeepChargeError
from deepcharge.interfaces.gpaw import predict_density, run_scf
from deepcharge.utils import working_directory

# two Si atoms in the (non-orthogonal) primitive cell at a low cut-off: seconds per SCF. Not Γ alone: a Γ-only
# Si cell this small is nearly metallic and its density far from the bulk one the model learnt (Si8 at Γ: ε 3.7 %)
PARAMETERS = {"mode": {"name": "pw", "ecut": 200}, "xc": "PBE", "kpts": {"size": [3, 3, 3]}, "gpts": [16, 16, 16],
              "txt": "gpaw.txt"}
# se_e2_a plus three-body terms and their least-squares baseline: the baseline alone fits Si64 to about 0.5 %
QUICK_MODEL = {
    "model": {"type_map": ["Si"],
              "descriptor": {"type": "se_e2_a", "sel": [24], "rcut": 4.0, "rcut_smth": 0.5, "neuron": [4, 8],
                             "axis_neuron": 4, "env_protection": 0.5,
                             "three_body": {"rcut": 3.5, "sel": [16], "num_radial": 6, "lmax": 4}},
              "fitting_net": {"neuron": [16, 16], "baseline_three_body": True}},
    "learning_rate": {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-4, "decay_steps": 5},
    "loss": {"type": "mae"},
    "training": {"training_data": {"systems": [str(si64_file(0))], "probes_per_system": 5000, "batch_size": 256},
                 "numb_steps": 5, "seed": 1, "disp_freq": 5, "save_freq": 5, "device": "cpu"},
}


@pytest.fixture(scope="module")
def si_model(tmp_path_factory):
    """A real frozen model of the shipped Si64 densities, trained for seconds."""
    import json

    folder = tmp_path_factory.mktemp("si_model")
    (folder / "input.json").write_text(json.dumps(QUICK_MODEL))
    with working_directory(folder):
        assert main(["train", "input.json"]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
    return folder / "model.pth"


def si2():
    atoms = ase.build.bulk("Si", "diamond", a=5.431)
    atoms.rattle(stdev=0.05, seed=3)
    return atoms


def test_prediction_start_converges_to_gpaw_energy_in_fewer_iterations(python, si_model, tmp_path):
    atoms = si2()
    density = predict_density(si_model, atoms, PARAMETERS["gpts"])
    own = run_scf(atoms, PARAMETERS, workdir=tmp_path / "own", python=python)
    seeded = run_scf(atoms, PARAMETERS, density, workdir=tmp_path / "seeded", python=python)
    assert abs(seeded["energy"] - own["energy"]) / len(atoms) < 1e-4
    assert seeded["iterations"] + seeded["extra_eigensolver_steps"] <= own["iterations"]
    # the quick model's charge is off by about 2 %; a density in e/Bohr³ would be off by a factor 6.7
    assert abs(seeded["normalisation"] - 1) < 0.05


def test_density_on_another_grid_is_a_one_line_error(python):
    expected = r"density's grid \[20, 20, 20\] is not GPAW's coarse grid \[16, 16, 16\]"
    with pytest.raises(DeepChargeError, match=expected):
        run_scf(si2(), PARAMETERS, np.zeros((20, 20, 20)), python=python)
