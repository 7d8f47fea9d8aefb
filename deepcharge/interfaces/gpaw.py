"""Start a GPAW SCF from a deepcharge prediction (GPAW 22.8, the version that wrote the shipped data).

deepcharge's default density files hold GPAW's smooth pseudo density ``nt_sG``: the valence pseudo density
plus the smooth pseudo core ``nct``, on GPAW's coarse grid (point (i, j, k) at (i/nx, j/ny, k/nz) @ cell), in
e/Å³. GPAW's ``Density.nt_sG`` holds the same field, core included (``Density.calculate_pseudo_density`` adds
``nct_G``), in e/Bohr³, so a prediction goes into it as it is, converted to Bohr and with no core subtracted.

A grid density does not fix GPAW's PAW atomic density matrices ``D_asp`` (the occupations of each atom's
partial waves, which set its compensation charges and atomic energy corrections). We start them from GPAW's own
guess, the free-atom occupations of its superposition start (``Density.initialize_from_atomic_densities``), and
GPAW does what it does with its own start (``PAW.set_positions``): it resets the mixer history, scales the
smooth density so that the cell is neutral with those ``D_asp`` (``Density.normalize``; the factor is
returned), builds the Hamiltonian and takes the initial wave functions from an LCAO diagonalisation in it.
Then (by default) a few eigensolver steps at the fixed seeded density make ``D_asp`` consistent with it
(:func:`density_matrices_from_wavefunctions`); without them, even the converged density itself saves GPAW
hardly an iteration, because it mixes the free-atom ``D_asp`` out as slowly as a poor density.

Two sides, usable in different interpreters: :func:`start_from_density` needs GPAW and not torch,
:func:`predict_density` needs torch and not GPAW; :func:`start_from_model` does both in one Python. Where GPAW
lives in another interpreter (Debian's ``python3-gpaw`` is built against the system Python's numpy),
:func:`run_scf` runs a whole SCF there (module :mod:`deepcharge.interfaces.gpaw_scf`), exchanging the structure
and the density through files.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from deepcharge.errors import DeepChargeError

BOHR = 0.52917721067  # Å, CODATA 2014 as in ASE 3.22's ase.units.Bohr (GPAW 22.8's unit)
GPAW_PYTHON_VARIABLE = "DEEPCHARGE_GPAW_PYTHON"
SYSTEM_PYTHON = "/usr/bin/python3"
HARTREE = 27.211386024367243  # eV, CODATA 2014 as in ASE 3.22's ase.units.Ha
# at most this many eigensolver steps make the PAW density matrices consistent with a seeded density
DENSITY_MATRIX_STEPS = 5


def coarse_grid_shape(calc, atoms):
    """The shape of ``calc``'s coarse grid (where ``nt_sG`` lives) for ``atoms``; initialises ``calc`` for them."""
    calc.initialize(atoms)
    gd = calc.density.gd
    if not gd.pbc_c.all():
        raise DeepChargeError("a GPAW grid along a non-periodic axis leaves out the boundary plane; starting from a "
                              "prediction is implemented for fully periodic cells only (atoms.pbc = True)")
    return tuple(int(n) for n in gd.get_size_of_global_array())


def atomic_density_matrices(density):
    """GPAW's initial guess for the PAW atomic density matrices: each atom's free-atom occupations on the
    diagonal, as ``Density.initialize_from_atomic_densities`` sets them."""
    D_asp = density.setups.empty_atomic_matrix(density.ncomponents, density.atom_partition)
    for a in D_asp:
        D_asp[a][:] = density.setups[a].initialize_density_matrix(density.get_initial_occupations(a))
    return D_asp


def start_from_density(calc, atoms, density, density_matrices: str = "wavefunctions",
                       steps: int = DENSITY_MATRIX_STEPS) -> dict:
    """Seed GPAW calculator ``calc`` for ``atoms`` with the smooth pseudo density ``density``; return the factor
    GPAW scaled it by to make the cell neutral (``normalisation``) and the eigensolver steps taken before GPAW's
    SCF loop (``steps``).

    ``density``: e/Å³ on ``calc``'s coarse grid (:func:`coarse_grid_shape`), valence pseudo density plus smooth
    core, as deepcharge's default files and predictions hold it. ``density_matrices``: ``"atomic"`` keeps GPAW's
    free-atom guess for ``D_asp``; ``"wavefunctions"`` (default) makes them consistent with the seeded density in
    at most ``steps`` eigensolver steps (:func:`density_matrices_from_wavefunctions`). Spin-paired, periodic
    calculations only. Afterwards ``atoms.calc`` is ``calc`` and ``atoms.get_potential_energy()`` runs the SCF
    from this start.
    """
    if density_matrices not in ("atomic", "wavefunctions"):
        raise DeepChargeError(f"density_matrices must be 'atomic' or 'wavefunctions', got {density_matrices!r}")
    shape = coarse_grid_shape(calc, atoms)
    density = np.asarray(density, dtype=float)
    if density.shape != shape:
        raise DeepChargeError(f"the density's grid {list(density.shape)} is not GPAW's coarse grid {list(shape)} "
                              f"for these atoms; predict on that grid, or give GPAW gpts={list(density.shape)}")
    if calc.density.nspins != 1 or not calc.density.collinear:
        raise DeepChargeError("starting a spin-polarised GPAW calculation from a prediction is not implemented "
                              "(a total density fixes no magnetisation)")
    calc.initialize_positions(atoms)  # places nct and the atoms' partition, needed by the arrays below
    gpaw_density = calc.density
    nt_sG = gpaw_density.gd.zeros(gpaw_density.nspins)
    nt_sG[0] = gpaw_density.gd.distribute(density * BOHR**3)
    gpaw_density.initialize_directly_from_arrays(nt_sG.copy(), None, atomic_density_matrices(gpaw_density))
    # mixer reset, normalisation, first mix, Hamiltonian and LCAO wave functions, all from the density set above
    calc.set_positions(atoms)
    taken = density_matrices_from_wavefunctions(calc, nt_sG, steps) if density_matrices == "wavefunctions" else 0
    atoms.calc = calc
    seeded = gpaw_density.gd.integrate(nt_sG).sum()
    return {"normalisation": float(gpaw_density.gd.integrate(gpaw_density.nt_sG).sum() / seeded), "steps": taken}


def density_matrices_from_wavefunctions(calc, nt_sG, steps: int = DENSITY_MATRIX_STEPS) -> int:
    """Make ``calc``'s ``D_asp`` consistent with the smooth density ``nt_sG`` (e/Bohr³), which stays fixed; return
    the steps taken. A step: one eigensolver step in the current Hamiltonian, ``D_asp`` from the wave functions,
    the Hamiltonian of ``nt_sG`` with them. At most ``steps``, and no more once the energy changes by less than
    GPAW's energy criterion (per valence electron) from one step to the next. The mixer restarts from the result.

    A grid density does not fix the PAW density matrices, and with GPAW's free-atom guess even the converged
    smooth density converges hardly faster than GPAW's own start (Si8 at Γ: 18 iterations instead of 19; with
    a single step, water_1: 18 instead of 19; with these steps, 8 + 3 instead of 19): GPAW mixes ``D_asp`` as
    slowly as the density. The steps cost about one SCF iteration each (an eigensolver step
    and a Hamiltonian) and are not in GPAW's ``scf.niter``.
    """
    wfs, hamiltonian, density = calc.wfs, calc.hamiltonian, calc.density
    tolerance = calc.scf.criteria["energy"].tol * wfs.nvalence / HARTREE
    energy = None
    for step in range(1, steps + 1):
        wfs.eigensolver.iterate(hamiltonian, wfs)
        hamiltonian.get_energy(wfs.calculate_occupation_numbers(density.fixed), wfs)
        wfs.calculate_atomic_density_matrices(density.D_asp)
        density.nt_sG[:] = nt_sG
        density.mixer.reset()
        density.calculate_normalized_charges_and_mix()
        hamiltonian.update(density)
        previous, energy = energy, hamiltonian.e_total_extrapolated
        if previous is not None and abs(energy - previous) < tolerance:
            break
    return step


def predict_density(model, atoms, shape, device: str = "cpu") -> np.ndarray:
    """A frozen model's density (e/Å³) for ASE ``atoms`` on the periodic grid ``shape`` over their cell.

    ``model``: a frozen model file or a :class:`deepcharge.DensityPredictor`.
    """
    from deepcharge.infer.density_predictor import DensityPredictor

    predictor = model if isinstance(model, DensityPredictor) else DensityPredictor(model, device)
    return predictor.eval_grid(atoms, shape)


def start_from_model(calc, atoms, model, device: str = "cpu") -> dict:
    """Seed ``calc`` for ``atoms`` with ``model``'s prediction on its coarse grid (GPAW and torch in one Python);
    return what :func:`start_from_density` returns."""
    density = predict_density(model, atoms, coarse_grid_shape(calc, atoms), device)
    return start_from_density(calc, atoms, density)


def gpaw_python() -> str:
    """An interpreter that imports GPAW: ``$DEEPCHARGE_GPAW_PYTHON``, else this one, else the system Python."""
    named = os.environ.get(GPAW_PYTHON_VARIABLE)
    candidates = [named] if named else [sys.executable, SYSTEM_PYTHON]
    for python in candidates:
        if python and shutil.which(python) and subprocess.run([python, "-c", "import gpaw"], capture_output=True,
                                                              timeout=120).returncode == 0:
            return python
    where = f"{GPAW_PYTHON_VARIABLE}={named}" if named else f"{sys.executable} or {SYSTEM_PYTHON}"
    raise DeepChargeError(f"GPAW is not importable in {where}; install it (Debian: apt-get install gpaw gpaw-data) "
                          f"or name a Python that has it in {GPAW_PYTHON_VARIABLE}")


def run_scf(atoms, parameters: dict, density=None, density_matrices: str = "wavefunctions",
            steps: int = DENSITY_MATRIX_STEPS, workdir=None, python=None, threads: int = 1,
            density_out=None) -> dict:
    """Run one GPAW SCF for ``atoms`` in interpreter ``python`` (default :func:`gpaw_python`) and return its
    record (see :func:`deepcharge.interfaces.gpaw_scf.run_job`).

    ``parameters``: GPAW keywords in JSON form (``mode`` as ``{"name": "pw", "ecut": 350}``). ``density``,
    ``density_matrices`` and ``steps``: a start as for :func:`start_from_density`; no ``density`` for GPAW's own
    start. ``density_out``: a ``.npy`` path for
    the converged smooth pseudo density (e/Å³). The job, the density, GPAW's log and the record are written in
    ``workdir`` (default: a temporary folder, removed afterwards).
    """
    python = python or gpaw_python()
    with tempfile.TemporaryDirectory(prefix="deepcharge_gpaw_") as scratch:
        folder = Path(workdir or scratch).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        job = {"atoms": {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
                         "cell": np.asarray(atoms.cell).tolist(), "pbc": [bool(p) for p in atoms.pbc]},
               "parameters": parameters, "density": None, "density_matrices": density_matrices,
               "steps": steps, "record": str(folder / "record.json"),
               "density_out": str(Path(density_out).resolve()) if density_out else None}
        if density is not None:
            np.save(folder / "density.npy", np.asarray(density, dtype=float))
            job["density"] = str(folder / "density.npy")
        (folder / "job.json").write_text(json.dumps(job, indent=1))
        # the package alone on the path: its parent may be a site-packages whose numpy the other Python cannot load
        Path(scratch, "path").mkdir()
        Path(scratch, "path", "deepcharge").symlink_to(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=str(Path(scratch, "path")), OMP_NUM_THREADS=str(threads))
        done = subprocess.run([python, "-m", "deepcharge.interfaces.gpaw_scf", str(folder / "job.json")],
                              capture_output=True, text=True, env=env, cwd=folder)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise DeepChargeError(f"GPAW run in {python} failed: {lines[-1]}")
        return json.loads(Path(job["record"]).read_text())
