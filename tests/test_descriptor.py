"""The se_e2_a switch, environment matrix and descriptor against a direct NumPy evaluation of the formulas."""

import numpy as np
import pytest
import torch

from deepcharge.models.descriptor.env_mat import environment_matrix, smooth_weight
from deepcharge.models.descriptor.se_e2_a import DescriptorSeA

RCUT, RCUT_SMTH = 4.0, 1.0


def numpy_switch(r, rs, rc):
    """Eq. 7 of Deep Charge written out: s(r)·r."""
    if r < rs:
        return 1.0
    if r >= rc:
        return 0.0
    u = (r - rs) / (rc - rs)
    return u**3 * (-6 * u**2 + 15 * u - 10) + 1


def test_switch_matches_formula_and_is_smooth():
    r = np.linspace(0.1, 5.0, 491)
    got = smooth_weight(torch.tensor(r), RCUT_SMTH, RCUT).numpy()
    want = np.array([numpy_switch(x, RCUT_SMTH, RCUT) for x in r])
    np.testing.assert_allclose(got, want, atol=1e-14)
    # value, first and second derivative vanish at rcut and are continuous at rcut_smth
    x = torch.tensor([RCUT_SMTH, RCUT], dtype=torch.float64, requires_grad=True)
    w = smooth_weight(x, RCUT_SMTH, RCUT)
    (g,) = torch.autograd.grad(w.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    assert w.tolist() == pytest.approx([1.0, 0.0])
    assert g.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    assert h.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)


def test_environment_matrix_rows():
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(3, 5, 3)) * 2.0
    mask = np.ones((3, 5), dtype=bool)
    mask[1, 3:] = False
    env = environment_matrix(torch.tensor(vec), torch.tensor(mask), RCUT_SMTH, RCUT).numpy()
    for p in range(3):
        for j in range(5):
            if not mask[p, j]:
                assert np.all(env[p, j] == 0)
                continue
            r = np.linalg.norm(vec[p, j])
            s = numpy_switch(r, RCUT_SMTH, RCUT) / r
            np.testing.assert_allclose(env[p, j], [s, s * vec[p, j, 0] / r, s * vec[p, j, 1] / r, s * vec[p, j, 2] / r],
                                       rtol=1e-12, atol=1e-14)


def numpy_descriptor(descriptor: DescriptorSeA, vec, mask):
    """D = (1/N²) Gᵀ R̃ R̃ᵀ G< with NumPy, the embedding nets run layer by layer from their weights."""
    mean, std = descriptor.mean.numpy(), descriptor.stddev.numpy()
    out = []
    for p in range(vec.shape[0]):
        rows = []
        for j in range(vec.shape[1]):
            r = np.linalg.norm(vec[p, j])
            if mask[p, j]:
                s = numpy_switch(r, descriptor.rcut_smth, descriptor.rcut) / r
                rows.append([s, s * vec[p, j, 0] / r, s * vec[p, j, 1] / r, s * vec[p, j, 2] / r])
            else:
                rows.append([0.0, 0.0, 0.0, 0.0])
        env = (np.array(rows) - mean) / std
        g_blocks, start = [], 0
        for t, sel_t in enumerate(descriptor.sel):
            x = env[start:start + sel_t, :1]
            for layer in descriptor.embeddings[t].layers:
                w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
                y = np.tanh(x @ w + b)
                if layer.timestep is not None:
                    y = y * layer.timestep.detach().numpy()
                if w.shape[0] == w.shape[1]:
                    y = y + x
                elif w.shape[1] == 2 * w.shape[0]:
                    y = y + np.concatenate([x, x], axis=1)
                x = y
            g_blocks.append(x)
            start += sel_t
        g = np.concatenate(g_blocks)
        n = env.shape[0]
        a = g.T @ env / n  # (M, 4)
        d = a @ a[: descriptor.axis_neuron].T  # (M, M<)
        out.append(d.reshape(-1))
    return np.array(out)


@pytest.mark.parametrize("resnet_dt", [False, True])
def test_descriptor_matches_numpy(resnet_dt):
    generator = torch.Generator().manual_seed(3)
    descriptor = DescriptorSeA(ntypes=2, sel=[4, 3], rcut=RCUT, rcut_smth=RCUT_SMTH, neuron=[5, 10, 20],
                               axis_neuron=4, resnet_dt=resnet_dt, activation_function="tanh", env_protection=0.0,
                               generator=generator, dtype=torch.float64)
    rng = np.random.default_rng(1)
    vec = rng.uniform(-2.5, 2.5, size=(4, 7, 3))
    mask = rng.uniform(size=(4, 7)) > 0.3
    vec[~mask] = 0.0
    env = descriptor.environment(torch.tensor(vec), torch.tensor(mask))
    descriptor.set_statistics(list(torch.split(env, descriptor.sel, dim=1)))
    assert descriptor.stddev.min() >= 1e-2
    got = descriptor(torch.tensor(vec), torch.tensor(mask)).detach().numpy()
    np.testing.assert_allclose(got, numpy_descriptor(descriptor, vec, mask), rtol=1e-10, atol=1e-12)
    assert got.shape == (4, 20 * 4)


def test_statistics_follow_deepmd_convention():
    generator = torch.Generator().manual_seed(0)
    descriptor = DescriptorSeA(1, [6], RCUT, RCUT_SMTH, [4, 8], 2, False, "tanh", 0.0, generator, torch.float64)
    vec = torch.randn(50, 6, 3, dtype=torch.float64, generator=generator) * 1.5
    mask = torch.ones(50, 6, dtype=torch.bool)
    env = descriptor.environment(vec, mask)
    descriptor.set_statistics([env])
    radial, angular = env[..., 0].reshape(-1), env[..., 1:].reshape(-1)
    assert torch.allclose(descriptor.mean[:, 0], radial.mean())
    assert torch.all(descriptor.mean[:, 1:] == 0)
    assert torch.allclose(descriptor.stddev[:, 0], radial.std(unbiased=False))
    assert torch.allclose(descriptor.stddev[:, 1:], angular.pow(2).mean().sqrt())


def test_radial_baseline_recovers_profiles_that_made_the_density():
    """A density built from known per-type radial profiles is fitted back exactly by least squares."""
    from deepcharge.models.radial_baseline import RadialBaseline, least_squares

    generator = torch.Generator().manual_seed(3)
    sel = [5, 3]
    vectors = torch.randn(400, sum(sel), 3, generator=generator, dtype=torch.float64) * 1.5
    mask = torch.rand(400, sum(sel), generator=generator, dtype=torch.float64) > 0.2
    truth = RadialBaseline(sel, 4.0, 0.5, 6, torch.float64)
    with torch.no_grad():
        truth.coefficients.copy_(torch.randn(2, 6, generator=generator, dtype=torch.float64))
    density = truth(vectors, mask) + 0.25  # the constant goes to the fitting net's bias
    fitted = RadialBaseline(sel, 4.0, 0.5, 6, torch.float64)
    features = fitted.features(vectors, mask).flatten(1)
    with torch.no_grad():
        fitted.coefficients.copy_(least_squares(features, density, torch.ones_like(density)).reshape(2, 6))
    torch.testing.assert_close(fitted(vectors, mask), truth(vectors, mask), rtol=1e-5, atol=1e-5)
    # beyond rcut a neighbour contributes nothing
    far = torch.zeros(1, sum(sel), 3, dtype=torch.float64)
    far[0, 0] = torch.tensor([4.2, 0.0, 0.0])
    only_first = torch.zeros(1, sum(sel), dtype=torch.bool)
    only_first[0, 0] = True
    assert float(truth(far, only_first)) == 0.0


def test_least_squares_from_chunked_moments_equals_the_one_shot_fit():
    """The baseline fitted from every training probe, chunk by chunk, is the fit of all rows at once."""
    from deepcharge.models.radial_baseline import LeastSquaresMoments, least_squares

    generator = torch.Generator().manual_seed(5)
    features = torch.randn(3000, 7, generator=generator, dtype=torch.float64) * torch.arange(1.0, 8.0) + 2.0
    target = features @ torch.randn(7, generator=generator, dtype=torch.float64) + 0.3 * torch.randn(
        3000, generator=generator, dtype=torch.float64) + 1.5
    weight = torch.rand(3000, generator=generator, dtype=torch.float64) + 0.5
    moments = LeastSquaresMoments()
    for rows in torch.arange(3000).split(700):
        moments.add(features[rows], target[rows], weight[rows])
    coefficients, mean, std = moments.solve()
    torch.testing.assert_close(coefficients, least_squares(features, target, weight), rtol=1e-7, atol=1e-9)
    residual = target - features @ coefficients
    expected_mean = float((weight * residual).sum() / weight.sum())
    assert mean == pytest.approx(expected_mean, rel=1e-9)
    assert std == pytest.approx(float(((weight * (residual - expected_mean) ** 2).sum() / weight.sum()).sqrt()),
                                rel=1e-7)


def test_three_body_descriptor_against_numpy():
    """Σ_jk φ_a(r_j) φ_b(r_k) P_l(c_jk) per type pair, evaluated directly with NumPy loops."""
    from numpy.polynomial import legendre

    from deepcharge.models.descriptor.three_body import ThreeBodyDescriptor

    sel, sel3, rcut, rcut_smth, radial, lmax, protection = [4, 3], [3, 2], 3.0, 0.5, 3, 3, 0.4
    generator = torch.Generator().manual_seed(5)
    vectors = torch.randn(6, sum(sel), 3, generator=generator, dtype=torch.float64) * 1.4
    mask = torch.rand(6, sum(sel), generator=generator, dtype=torch.float64) > 0.25
    features = ThreeBodyDescriptor(sel, sel3, rcut, rcut_smth, radial, lmax, protection, torch.float64)(vectors, mask)

    centres, width = np.linspace(0, rcut, radial), rcut / (radial - 1)
    v, m = vectors.numpy(), mask.numpy()
    slots = [[0, 1, 2], [4, 5]]  # each type's first sel3 slots
    expected = np.zeros((6, 2, 2, lmax + 1, radial, radial))
    for p in range(6):
        for ta in range(2):
            for tb in range(2):
                for j in slots[ta]:
                    for k in slots[tb]:
                        rj, rk = np.linalg.norm(v[p, j]), np.linalg.norm(v[p, k])
                        wj = float(smooth_weight(torch.tensor(rj), rcut_smth, rcut)) * m[p, j]
                        wk = float(smooth_weight(torch.tensor(rk), rcut_smth, rcut)) * m[p, k]
                        phij = np.exp(-(rj - centres) ** 2 / (2 * width ** 2)) * wj
                        phik = np.exp(-(rk - centres) ** 2 / (2 * width ** 2)) * wk
                        c = v[p, j] @ v[p, k] / ((rj + protection) * (rk + protection))
                        for l in range(lmax + 1):
                            expected[p, ta, tb, l] += legendre.legval(c, np.eye(lmax + 1)[l]) * np.outer(phij, phik)
    expected = expected.reshape(6, -1) / np.sqrt(5)
    np.testing.assert_allclose(features.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_folding_the_input_normalisation_changes_nothing():
    """freeze folds the whitening map into the fitting net's first layer: same densities, fewer operations."""
    from deepcharge.models.fitting import DensityFitting

    generator = torch.Generator().manual_seed(8)
    fitting = DensityFitting(12, [10, 10], True, "tanh", "whiten", 1e-4, generator, torch.float64)
    descriptors = torch.randn(300, 12, generator=generator, dtype=torch.float64) @ torch.randn(
        12, 12, generator=generator, dtype=torch.float64)
    fitting.set_statistics(descriptors, torch.rand(300, generator=generator, dtype=torch.float64),
                           torch.ones(300, dtype=torch.float64))
    before = fitting(descriptors)
    fitting.fold_normalisation()
    assert fitting.normalisation_folded
    torch.testing.assert_close(fitting(descriptors), before, rtol=1e-10, atol=1e-12)


def test_higher_order_blocks_are_legendre_sums():
    """With lmax 3 the blocks of orders 2 and 3 are (1/N²) Σ_jk g_j g_kᵀ s_j s_k |v_j|^l |v_k|^l P_l(cos θ_jk) / σ_l²:
    the solid harmonics contract to Legendre polynomials of the angle at the probe."""
    from numpy.polynomial import legendre

    generator = torch.Generator().manual_seed(5)
    protection = 0.3
    descriptor = DescriptorSeA(2, [4, 3], RCUT, RCUT_SMTH, [5, 10], 3, False, "tanh", protection, generator,
                               torch.float64, lmax=3)
    rng = np.random.default_rng(2)
    vec = rng.uniform(-2.5, 2.5, size=(3, 7, 3))
    mask = rng.uniform(size=(3, 7)) > 0.3
    env = descriptor.environment(torch.tensor(vec), torch.tensor(mask))
    descriptor.set_statistics(list(torch.split(env, descriptor.sel, dim=1)))
    got = descriptor(torch.tensor(vec), torch.tensor(mask)).detach().numpy().reshape(3, 3, 10, 3)
    normalised_radial = ((env[..., :1] - descriptor.mean[:, :1]) / descriptor.stddev[:, :1])
    g = torch.cat([net(block) for net, block in zip(descriptor.embeddings, torch.split(normalised_radial, [4, 3], 1))],
                  dim=1).detach().numpy()  # (P, 7, M)
    r = np.linalg.norm(vec, axis=-1)
    s = np.where(mask, [[numpy_switch(x, RCUT_SMTH, RCUT) for x in row] for row in r] / (r + protection), 0.0)
    v = r / (r + protection)
    cos = np.einsum("pjx,pkx->pjk", vec, vec) / (r[:, :, None] * r[:, None, :])
    for l in (2, 3):
        row = s * v**l / descriptor.stddev[:, l * l].numpy()  # each type has its own σ_l
        weight = row[:, :, None] * row[:, None, :] * legendre.legval(cos, np.eye(4)[l])
        want = np.einsum("pjm,pjk,pkn->pmn", g, weight, g[:, :, :3]) / 7**2
        np.testing.assert_allclose(got[:, l - 1], want, rtol=1e-10, atol=1e-12)


def test_three_body_baseline_fits_a_density_linear_in_the_terms():
    """With ``baseline_three_body`` the least-squares baseline alone reproduces a density that is a radial
    superposition plus a linear combination of the three-body terms, and the net starts from its residual."""
    from deepcharge.config import normalize
    from deepcharge.models import build_model

    config = normalize({"model": {"type_map": ["Si", "O"], "precision": "float64",
                                  "descriptor": {"sel": [8, 6], "rcut": 4.0, "neuron": [4, 8], "axis_neuron": 4,
                                                 "seed": 1, "env_protection": 0.3,
                                                 "three_body": {"rcut": 3.5, "sel": [5, 4], "num_radial": 3,
                                                                "lmax": 2}},
                                  "fitting_net": {"neuron": [8], "seed": 2, "radial_baseline": 4,
                                                  "baseline_three_body": True}},
                        "training": {"training_data": {"systems": ["unused"]}, "numb_steps": 1}})
    model = build_model(config["model"])
    generator = torch.Generator().manual_seed(5)
    vectors = torch.randn(600, 14, 3, generator=generator, dtype=torch.float64) * 1.6
    mask = torch.rand(600, 14, generator=generator, dtype=torch.float64) > 0.2
    three_body = model.angular[0](vectors, mask)
    truth = three_body @ torch.randn(three_body.shape[1], generator=generator, dtype=torch.float64)
    truth = truth + model.baseline.features(vectors, mask).flatten(1) @ torch.randn(8, generator=generator,
                                                                                    dtype=torch.float64)
    inputs = {"probe_vectors": vectors, "probe_nlist": torch.where(mask, 0, -1)}
    model.fit_statistics(inputs, truth + 0.5, torch.ones_like(truth))
    fitted = model.baseline_density(vectors, mask, three_body)
    torch.testing.assert_close(fitted, truth, rtol=1e-4, atol=1e-5 * float(truth.abs().max()))  # small ridge
    assert model.three_body_coefficients.abs().max() > 0
    # the fitting net's output statistics are those of the residual: here the constant 0.5 alone
    assert abs(float(model.fitting.bias) - 0.5) < 1e-5
