"""How much of each density a local model can explain, and how that transfers between snapshots; prints JSON.

For a pseudo_atom input, the least-squares baseline ρ₀ of its model (the radial profiles, and the three-body
terms with ``fitting_net.baseline_three_body``), as the model fits it before training, is fitted on half of the
drawn probes of each file in turn, and of all files together, and its ε_mae is measured on the other half of
every file. The diagonal (fitted and measured on the same snapshot, different points) is the floor of this
local linear model on that snapshot: what no training on other snapshots can be expected to beat by much.
Seconds per file, no training.

    OMP_WAIT_POLICY=PASSIVE python tools/baseline_transfer.py -i input_examples/si64_one_shot/input.json \
        -s input_examples/si64_one_shot/data/si64_*.CHGCAR.gz -n 40000 --json transfer.json
"""

import argparse
import copy
import json
import sys

import torch

from deepcharge.analysis.metrics import DensityErrors
from deepcharge.chunks import STATISTICS_CHUNK
from deepcharge.config import load_input_file, normalize
from deepcharge.data.inputs import InputSpec, Structure, auto_sel, max_neighbour_counts, probe_inputs
from deepcharge.data.sampler import draw_probes
from deepcharge.data.systems import load_system, system_label
from deepcharge.errors import DeepChargeError
from deepcharge.models import build_model
from deepcharge.models.radial_baseline import least_squares
from deepcharge.utils import write_json


def baseline_features(model, inputs):
    """The columns of the model's ρ₀ at the probes of ``inputs`` (see PseudoAtomModel.baseline_columns)."""
    parts = []
    with torch.no_grad():
        chunks = zip(inputs["probe_vectors"].split(STATISTICS_CHUNK), inputs["probe_nlist"].split(STATISTICS_CHUNK))
        for vectors, nlist in chunks:
            mask = nlist >= 0
            # only the three-body terms of the descriptor enter ρ₀: skip the se_e2_a embedding nets
            three_body = (torch.cat([extra(vectors, mask) for extra in model.angular], dim=1)
                          if model.baseline_three_body else None)
            parts.append(torch.cat(model.baseline_columns(vectors, mask, three_body), dim=1))
    return torch.cat(parts)


def eps_mae(predicted, reference) -> float:
    return DensityErrors().add(reference, predicted).eps_mae_percent


def main(argv=None):
    try:
        run(argv)
    except DeepChargeError as err:  # a missing or malformed file, a bad input key: one line, no traceback
        sys.exit(f"baseline_transfer: error: {err}")


def run(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--input", required=True, help="a pseudo_atom input file (its model section is used)")
    parser.add_argument("-s", "--systems", nargs="+", required=True, help="density files")
    parser.add_argument("-n", "--probes", type=int, default=40000, help="probes drawn per file (half fit, half test)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    config = normalize(load_input_file(args.input), args.input)
    model_config = copy.deepcopy(config["model"])
    if model_config["type"] != "pseudo_atom":
        sys.exit(f"{args.input}: model.type must be pseudo_atom (the least-squares baseline is that family's)")
    type_map, dtype = model_config["type_map"], torch.float64
    generator = torch.Generator().manual_seed(args.seed)
    snapshots = [load_system(path) for path in args.systems]
    draws = [draw_probes(snapshot, args.probes, generator) for snapshot in snapshots]
    structures = [Structure.from_snapshot(snapshot, type_map, "cpu", dtype) for snapshot in snapshots]
    probes = [torch.as_tensor(positions, dtype=dtype) for positions, _, _ in draws]
    descriptor = model_config["descriptor"]
    if descriptor["sel"] == "auto":
        counts = torch.stack([max_neighbour_counts(s, p, descriptor["rcut"], len(type_map))
                              for s, p in zip(structures, probes)]).max(0).values
        descriptor["sel"] = auto_sel(counts)
    model_config["precision"] = "float64"
    for section in ("descriptor", "fitting_net"):  # the embedding and fitting nets play no part in ρ₀
        if model_config[section].get("seed") is None:
            model_config[section]["seed"] = args.seed
    model = build_model(model_config)
    spec = InputSpec.of(model)
    if not model.baseline.num_basis and not model.baseline_three_body:
        sys.exit(f"{args.input}: the model has no least-squares baseline (fitting_net.radial_baseline is 0 and "
                 f"baseline_three_body false)")
    halves = []  # (fit features, fit densities, test features, test densities) per file
    for structure, points, (_, density, _) in zip(structures, probes, draws):
        features = baseline_features(model, probe_inputs(structure, points, spec))
        density = torch.as_tensor(density, dtype=dtype)
        half = len(density) // 2
        halves.append((features[:half], density[:half], features[half:], density[half:]))

    labels = [system_label(path) for path in args.systems]
    fits = [([i], label) for i, label in enumerate(labels)] + [(list(range(len(labels))), "all")]
    rows = []
    for members, label in fits:
        features = torch.cat([halves[i][0] for i in members])
        density = torch.cat([halves[i][1] for i in members])
        coefficients = least_squares(features, density, torch.ones_like(density))
        intercept = (density - features @ coefficients).mean()
        scores = {labels[i]: eps_mae(halves[i][2] @ coefficients + intercept, halves[i][3])
                  for i in range(len(labels))}
        rows.append({"fitted_on": label, "eps_mae_percent": scores})
        print(f"fitted on {label:>24}: " + "  ".join(f"{name} {value:.3f}" for name, value in scores.items()),
              file=sys.stderr, flush=True)
    result = {"input": args.input, "probes_per_file": args.probes, "rows": rows}
    print(json.dumps(result, indent=1))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
