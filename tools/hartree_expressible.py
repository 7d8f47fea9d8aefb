"""Can a model's fitting input express the long-wavelength part of its error? For a training checkpoint and a
density file, the error of the checkpoint's model on every grid point is split at ``--cut`` Å⁻¹ into its long- and
short-wavelength parts; the long part is fitted by least squares as a linear function of the model's fitting input
(the whitened descriptor a frozen-embedding ``pseudo_atom`` model feeds its net) on every point of the file, and
E_H[δρ] is given for the error, its
parts, and the error less the fitted correction: what any correction made from the model's own features, hence any
fitting net on them, could remove. Prints one JSON line.

    python tools/hartree_expressible.py -c model.ckpt.pt -s si64_0.save/charge-density.dat.gz --cut 1.5
"""

import argparse
import json

import numpy as np
import torch

from deepcharge.analysis.hartree import hartree_energy, wave_vectors
from deepcharge.data.inputs import InputSpec
from deepcharge.data.probe_set import ProbeSet
from deepcharge.data.systems import load_system
from deepcharge.models import build_model
from deepcharge.models.base import load_weights
from deepcharge.train.checkpoint import load_checkpoint

CHUNK = 4096


def low_pass(field: np.ndarray, cell: np.ndarray, cut: float) -> np.ndarray:
    """The part of a periodic grid field made of waves with |G| < ``cut`` (Å⁻¹)."""
    g = np.linalg.norm(wave_vectors(field.shape, cell, half=True), axis=-1)
    return np.fft.irfftn(np.fft.rfftn(field) * (g < cut), s=field.shape, axes=(0, 1, 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--checkpoint", required=True)
    parser.add_argument("-s", "--system", required=True)
    parser.add_argument("--cut", type=float, default=1.5, help="Å⁻¹ between long and short wavelengths")
    parser.add_argument("--ridge", type=float, default=1e-6, help="relative ridge of the least squares")
    args = parser.parse_args(argv)

    state = load_checkpoint(args.checkpoint)
    model = build_model(state["config"]["model"])
    load_weights(model, state["model_state"], args.checkpoint)
    model.eval()
    for parameter in model.embedding_parameters():  # frozen, as training with descriptor_lr_factor 0 leaves them
        parameter.requires_grad_(False)
    snapshot = load_system(args.system)
    spec = InputSpec.of(model)
    points = snapshot.grid_points()
    density = snapshot.density.reshape(-1)
    features, predicted = [], []
    with torch.no_grad():
        for start in range(0, len(points), CHUNK):
            part = slice(start, start + CHUNK)
            probes = ProbeSet.build([snapshot], [(points[part], density[part], np.ones(len(density[part])))],
                                    state["config"]["model"]["type_map"], spec, "cpu", torch.float32)
            fixed = model.fixed_features(probes.inputs)
            features.append(fixed["fitting_input"].double().numpy())
            predicted.append(model.density_from_fixed(fixed).double().numpy())
    features = np.concatenate(features)
    error = (np.concatenate(predicted) - density).reshape(snapshot.grid_shape)
    long_part = low_pass(error, snapshot.cell, args.cut)
    design = np.hstack([features, np.ones((len(features), 1))])
    gram = design.T @ design
    gram += args.ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    coefficients = np.linalg.solve(gram, design.T @ long_part.reshape(-1))
    fitted = (design @ coefficients).reshape(snapshot.grid_shape)
    explained = 1 - ((long_part - fitted) ** 2).sum() / ((long_part - long_part.mean()) ** 2).sum()
    energy = {name: 1e3 * hartree_energy(field, snapshot.cell) for name, field in (
        ("error", error), ("long", long_part), ("short", error - long_part), ("error_less_fit", error - fitted),
        ("long_less_fit", long_part - fitted))}
    print(json.dumps({"checkpoint": args.checkpoint, "system": args.system, "cut": args.cut,
                      "features": features.shape[1], "points": len(features),
                      "long_part_variance_explained": float(explained), "hartree_mev": energy}))


if __name__ == "__main__":
    main()
