"""Training from fixed features computes what the full model computes: the same densities, gradients and run."""

import copy

import numpy as np
import pytest
import torch
from conftest import si64_file, tiny_input, without_baseline

from deepcharge.cli import main
from deepcharge.config import normalize
from deepcharge.data.inputs import InputSpec, Structure, probe_inputs
from deepcharge.io import read_density
from deepcharge.models import build_model

MODEL = {"type": "pseudo_atom", "type_map": ["Si"],
         "descriptor": {"type": "se_e2_a", "sel": [40], "rcut": 4.0, "rcut_smth": 0.5, "neuron": [4, 8],
                        "axis_neuron": 4, "env_protection": 0.5,
                        "three_body": {"rcut": 3.5, "sel": [12], "num_radial": 4, "lmax": 3}},
         "fitting_net": {"neuron": [16, 16], "baseline_three_body": True}}


@pytest.fixture(scope="module")
def model_and_inputs():
    snapshot = read_density(si64_file(0))
    config = normalize({"model": MODEL, "training": {"training_data": {"systems": "x"}, "numb_steps": 0}})["model"]
    for section in ("descriptor", "fitting_net"):
        config[section]["seed"] = 3
    model = build_model(config).double()
    index = torch.randperm(snapshot.density.size, generator=torch.Generator().manual_seed(0))[:600].numpy()
    structure = Structure.from_snapshot(snapshot, ["Si"], "cpu", torch.float64)
    inputs = probe_inputs(structure, torch.as_tensor(snapshot.grid_points(index)), InputSpec.of(model))
    density = torch.as_tensor(snapshot.density.reshape(-1)[index])
    model.fit_statistics(inputs, density, torch.ones_like(density))
    return model, inputs


def test_an_untrained_model_is_its_least_squares_baseline(model_and_inputs):
    """The fitting net starts at zero, so the step-0 model (model.ckpt-0.pt) is the model without its net."""
    model, inputs = model_and_inputs
    fixed = model.fixed_features(inputs)
    linear = model.baseline.from_features(fixed["radial"]) + fixed["three_body_baseline"] + model.fitting.bias
    torch.testing.assert_close(model.baseline_from_fixed(fixed) + model.fitting.bias, linear, rtol=0, atol=0)
    torch.testing.assert_close(model(inputs), linear, rtol=0, atol=1e-14)


def gradients(model, density):
    model.zero_grad()
    density.square().sum().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("frozen_descriptor", [False, True])
def test_density_and_gradients_from_fixed_features_are_the_model_s(model_and_inputs, frozen_descriptor):
    model, inputs = copy.deepcopy(model_and_inputs[0]), model_and_inputs[1]
    with torch.no_grad():  # a fitted-looking model: nonzero radial coefficients and a net away from its start
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1),
                                              dtype=parameter.dtype))
    for parameter in model.embedding_parameters():
        parameter.requires_grad_(not frozen_descriptor)
    fixed = model.fixed_features(inputs)
    assert ("fitting_input" in fixed) == frozen_descriptor  # frozen embedding nets: the whole input is fixed
    full = model(inputs)
    from_fixed = model.density_from_fixed(fixed)
    torch.testing.assert_close(from_fixed, full, rtol=1e-12, atol=1e-12)
    expected, got = gradients(model, model(inputs)), gradients(model, model.density_from_fixed(fixed))
    assert expected.keys() == got.keys() and len(got) > 0
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-9, atol=1e-12, msg=name)
    if frozen_descriptor:
        assert not any(name.startswith("descriptor.") for name in got)


def read_lcurve(path):
    return np.genfromtxt(path, names=True)


@pytest.mark.parametrize("lr_factor", [0.1, 0.0])
def test_training_with_and_without_fixed_features_follows_the_same_curve(workdir, lr_factor):
    curves = {}
    for cache in (True, False):
        folder = workdir / f"cache_{cache}"
        folder.mkdir()
        input_file = without_baseline(tiny_input(folder, training_data={
            "systems": [str(si64_file(0))], "probes_per_system": 2000, "batch_size": 64, "cache_features": cache}))
        text = input_file.read_text().replace('"decay_steps": 5', f'"decay_steps": 5, "descriptor_lr_factor": '
                                                                f'{lr_factor}')
        input_file.write_text(text)
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            assert main(["train", str(input_file)]) == 0
        curves[cache] = read_lcurve(folder / "lcurve.out")
    for name in ("rmse_val", "rmse_trn", "eps_mae_val", "eps_mae_trn"):
        np.testing.assert_allclose(curves[True][name], curves[False][name], rtol=2e-4)
    assert curves[True]["eps_mae_trn"][-1] < curves[True]["eps_mae_trn"][0]  # it trained
