"""``deepcharge compress``: tabulated embedding nets reproduce the nets, and compressed models the frozen ones."""

import json

import numpy as np
import pytest
import torch
from conftest import si64_file, tiny_input

from deepcharge.cli import main
from deepcharge.entrypoints.compress import compress_model
from deepcharge.errors import DeepChargeError
from deepcharge.infer.predictor import METADATA_FILE, Predictor
from deepcharge.io import read_density
from deepcharge.models.descriptor.se_e2_a import DescriptorSeA
from deepcharge.models.descriptor.tabulate import TabulatedSeA, embedding_input_range, value_and_derivatives
from deepcharge.utils import working_directory

RCUT, RCUT_SMTH, PROTECTION = 3.5, 0.5, 0.5


def random_vectors(count: int, nnei: int, low: float, high: float, seed: int = 0):
    """Neighbour vectors at uniform distances in [low, high], one slot in four empty."""
    generator = torch.Generator().manual_seed(seed)
    distance = low + (high - low) * torch.rand(count, nnei, 1, generator=generator, dtype=torch.float64)
    direction = torch.randn(count, nnei, 3, generator=generator, dtype=torch.float64)
    mask = torch.rand(count, nnei, generator=generator) > 0.25
    return direction / direction.norm(dim=-1, keepdim=True) * distance * mask.unsqueeze(-1), mask


@pytest.fixture(scope="module", params=[1, 3])
def descriptor(request):
    """A float64 se_e2_a (lmax 1, and 3) with two types, timesteps and both skip kinds, normalised by its own
    environments."""
    generator = torch.Generator().manual_seed(4)
    descriptor = DescriptorSeA(2, [5, 4], RCUT, RCUT_SMTH, [4, 8, 8], 3, True, "tanh", PROTECTION, generator,
                               torch.float64, lmax=request.param)
    vectors, mask = random_vectors(200, 9, 1.0, RCUT)
    descriptor.set_statistics(list(torch.split(descriptor.environment(vectors, mask), descriptor.sel, dim=1)))
    return descriptor


@pytest.mark.parametrize("min_distance", [0.0, 2.0])  # 2 Å: the nets still vary in the coarse part
def test_table_is_c2_and_matches_the_nets_between_knots(descriptor, min_distance):
    lower, upper = embedding_input_range(descriptor, min_distance)
    table = TabulatedSeA(descriptor, lower, upper, 0.01, 5.0)
    knots = torch.cat([table.knots, torch.tensor([table.maximum], dtype=torch.float64)])
    h = (knots[1:] - knots[:-1]).unsqueeze(1)
    for net, rows in zip(descriptor.embeddings, table.tables):
        a = rows.view(table.intervals, 6, -1)
        # the polynomial of each interval at its right end: value, 1st and 2nd derivative of the next one's start
        ends = [sum(a[:, k] * h**k for k in range(6)),
                sum(k * a[:, k] * h**(k - 1) for k in range(1, 6)),
                sum(k * (k - 1) * a[:, k] * h**(k - 2) for k in range(2, 6))]
        for order, end in enumerate(ends):
            start = a[1:, order] * [1, 1, 2][order]
            torch.testing.assert_close(end[:-1], start, rtol=1e-9, atol=1e-9)
        # halfway between knots, in the fine and the coarse part
        middle = (knots[:-1] + knots[1:]) / 2
        index, offset = table.locate(middle.unsqueeze(0))
        want = value_and_derivatives(net, middle)[0]
        torch.testing.assert_close(table.embed(rows, index, offset)[0], want, rtol=1e-9, atol=1e-9)


def test_tabulated_descriptor_matches_over_the_whole_range(descriptor):
    """Probes from on an atom (ŝ at the top of the table) to beyond rcut (ŝ at its bottom)."""
    lower, upper = embedding_input_range(descriptor, 0.0)
    table = TabulatedSeA(descriptor, lower, upper, 0.01, 5.0)
    vectors, mask = random_vectors(300, 9, 0.0, RCUT + 0.2, seed=1)
    vectors[0, :, :] = 0.0  # a probe sitting on its atoms: s = 1/env_protection
    s = ((descriptor.environment(vectors, mask) - descriptor.mean) / descriptor.stddev)[..., 0]
    assert float(s.max()) > upper - 1 and float(s.min()) < lower + 1
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(table)(vectors, mask), descriptor(vectors, mask),
                                   rtol=1e-9, atol=1e-11)


@pytest.fixture(scope="module")
def frozen_float64(tmp_path_factory):
    """A tiny float64 pseudo-atom model (rows to order 2), trained for two steps, frozen and compressed."""
    folder = tmp_path_factory.mktemp("compress")
    with working_directory(folder):
        path = tiny_input(folder, numb_steps=2)
        config = json.loads(path.read_text())
        config["model"]["precision"] = "float64"
        config["model"]["descriptor"]["resnet_dt"] = True
        config["model"]["descriptor"]["lmax"] = 2
        path.write_text(json.dumps(config))
        assert main(["train", str(path)]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
        assert main(["compress", "-i", "model.pth", "-o", "model-compressed.pth"]) == 0
    return folder / "model.pth", folder / "model-compressed.pth"


def test_compressed_model_predicts_as_the_frozen_one(frozen_float64):
    """At grid points, on atoms and at rcut_smth and rcut from an atom: every part of the table is used."""
    original, compressed = (Predictor.from_file(path, "cpu") for path in frozen_float64)
    snapshot = read_density(si64_file(1))
    rng = np.random.default_rng(0)
    grid = snapshot.grid_points(rng.choice(snapshot.density.size, 3000, replace=False), snapshot.grid_shape)
    directions = rng.normal(size=(64, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    around_atoms = [snapshot.positions + r * directions for r in (0.0, 0.01, 0.2, RCUT_SMTH, 2.0, RCUT - 0.01)]
    points = np.concatenate([grid, *around_atoms])
    want = original.predict_points(snapshot, points)
    np.testing.assert_allclose(compressed.predict_points(snapshot, points), want, rtol=1e-5, atol=0)
    assert compressed.metadata["compressed"]["max_abs_deviation"] < 1e-8


def test_compress_then_test_and_predict(frozen_float64, workdir):
    original, compressed = map(str, frozen_float64)
    for name, model in (("original", original), ("compressed", compressed)):
        assert main(["test", "-m", model, "-s", str(si64_file(2)), "-n", "2000", "--json", f"{name}.json"]) == 0
        assert main(["predict", "-m", model, "-s", str(si64_file(2)), "-o", f"{name}.cube",
                     "--grid", "8", "6", "4"]) == 0
    metrics = [json.loads((workdir / f"{name}.json").read_text())["overall"] for name in ("original", "compressed")]
    assert metrics[1]["eps_mae_percent"] == pytest.approx(metrics[0]["eps_mae_percent"], rel=1e-6)
    np.testing.assert_allclose(read_density("compressed.cube").density, read_density("original.cube").density,
                               rtol=1e-5)
    extra = {METADATA_FILE: ""}
    torch.jit.load(compressed, _extra_files=extra)
    metadata = json.loads(extra[METADATA_FILE])
    assert metadata["backend"] == "pseudo_atom" and metadata["compressed"]["step"] == 0.01
    assert metadata["compressed"]["range"][0] <= metadata["compressed"]["range"][1] < metadata["compressed"]["range"][2]


def one_line_error(capsys, argv, *culprits):
    """The command line fails with a single line naming every culprit."""
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(lines)
    assert all(culprit in lines[-1] for culprit in culprits), lines[-1]


def test_only_uncompressed_pseudo_atom_models_compress(frozen_float64, workdir, capsys):
    other = torch.jit.script(torch.nn.Identity())
    torch.jit.save(other, "schnet.pth", _extra_files={METADATA_FILE: json.dumps({"backend": "schnet"})})
    one_line_error(capsys, ["compress", "-i", "schnet.pth", "-o", "out.pth"], "schnet.pth", "schnet", "pseudo_atom")
    one_line_error(capsys, ["compress", "-i", str(frozen_float64[1]), "-o", "out.pth"], "already compressed")
    assert not (workdir / "out.pth").exists()
    with pytest.raises(DeepChargeError, match="--step"):
        compress_model(str(frozen_float64[0]), "out.pth", step=0.0)
