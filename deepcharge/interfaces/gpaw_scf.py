"""One GPAW SCF from a job file, in whichever Python has GPAW: ``python -m deepcharge.interfaces.gpaw_scf job.json``.

The job (written by :func:`deepcharge.interfaces.gpaw.run_scf`) names the atoms, GPAW's keywords, the start (a
``.npy`` smooth pseudo density in e/Å³, or none for GPAW's own superposition start), where the record goes and,
optionally, where the converged smooth pseudo density goes (``density_out``, e/Å³, core included).
Imports numpy, ASE and GPAW only, so that it runs in an interpreter without torch.
"""

import json
import math
import os
import sys
import time

import numpy as np

from deepcharge.errors import DeepChargeError
from deepcharge.interfaces.gpaw import HARTREE, start_from_density


def finite(value):
    """``value`` as a float, or None where GPAW has none yet (an infinite error): JSON has no infinity."""
    value = float(value)
    return value if math.isfinite(value) else None


def converged_from(values, tolerance) -> int:
    """The first iteration (from 1) from which every value stays below ``tolerance`` (None: not yet known);
    0 if the last is not."""
    first = 0
    for iteration, value in enumerate(values, start=1):
        if value is None or value >= tolerance:
            first = 0
        elif not first:
            first = iteration
    return first


def energy_changes(energies, nvalence, window: int = 3):
    """GPAW's energy criterion per iteration: the spread of the last ``window`` energies per valence electron."""
    per_electron = np.asarray(energies) / nvalence
    return [float(np.ptp(per_electron[i + 1 - window:i + 1])) if i + 1 >= window else None
            for i in range(len(per_electron))]


def run_job(job: dict) -> dict:
    """Run the SCF ``job`` describes; return its record.

    The record: ``iterations`` (GPAW's ``scf.niter``), ``energy`` and ``free_energy`` (eV), ``seconds`` (wall
    time from creating the calculator to convergence, the start included; ``cpu_seconds``: this process's CPU
    time over the same span, which a shared machine disturbs less), ``start_seconds`` (of that, the
    start: superposition or seeding, LCAO wave functions), ``normalisation`` (the factor GPAW scaled a given
    density by), ``extra_eigensolver_steps`` (taken by the start, before GPAW's loop), ``trace`` (per
    iteration: energy, GPAW's density and eigenstate errors per valence electron and the energy criterion) and
    ``converged_from`` (per criterion, the iteration from which it stayed met).
    """
    from ase import Atoms
    from gpaw import GPAW, __version__

    spec = job["atoms"]
    atoms = Atoms(numbers=spec["numbers"], positions=spec["positions"], cell=spec["cell"], pbc=spec["pbc"])
    trace = []
    began, began_cpu = time.perf_counter(), time.process_time()
    calc = GPAW(**job["parameters"])

    def record_iteration():
        nvalence = calc.wfs.nvalence
        trace.append({"energy": calc.hamiltonian.e_total_extrapolated * HARTREE,
                      "density": finite(calc.density.error / nvalence),
                      "eigenstates": finite(calc.wfs.eigensolver.error * HARTREE**2 / nvalence)})

    calc.attach(record_iteration, 1)
    normalisation, extra_steps = None, 0
    if job["density"] is None:
        atoms.calc = calc
        calc.initialize(atoms)
        calc.set_positions(atoms)
    else:
        seeded = start_from_density(calc, atoms, np.load(job["density"]), job["density_matrices"], job["steps"])
        normalisation, extra_steps = seeded["normalisation"], seeded["steps"]
    started = time.perf_counter()
    energy = atoms.get_potential_energy()
    finished, finished_cpu = time.perf_counter(), time.process_time()
    if job.get("density_out"):
        np.save(job["density_out"], calc.get_pseudo_density())

    criteria = calc.scf.criteria
    nvalence = calc.wfs.nvalence
    changes = energy_changes([step["energy"] for step in trace], nvalence, criteria["energy"].n_old)
    for step, change in zip(trace, changes):
        step["energy_change"] = change
    return {"gpaw_version": __version__, "natoms": len(atoms), "nvalence": float(nvalence),
            "iterations": int(calc.scf.niter), "energy": float(energy),
            "free_energy": float(atoms.calc.get_potential_energy(force_consistent=True)),
            "seconds": finished - began, "cpu_seconds": finished_cpu - began_cpu, "start_seconds": started - began,
            "normalisation": normalisation, "extra_eigensolver_steps": extra_steps,
            "tolerances": {name: criteria[name].tol for name in ("energy", "density", "eigenstates")},
            "converged_from": {"energy": converged_from(changes, criteria["energy"].tol),
                               "density": converged_from([s["density"] for s in trace], criteria["density"].tol),
                               "eigenstates": converged_from([s["eigenstates"] for s in trace],
                                                             criteria["eigenstates"].tol)},
            "trace": trace}


def main(argv=None) -> int:
    path = (argv if argv is not None else sys.argv[1:])[0]
    with open(path) as handle:
        job = json.load(handle)
    try:
        record = run_job(job)
    except DeepChargeError as err:
        print(err, file=sys.stderr)
        return 1
    with open(job["record"] + ".tmp", "w") as handle:
        json.dump(record, handle, indent=1)
    os.replace(job["record"] + ".tmp", job["record"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
