"""Quantum ESPRESSO densities for the structures of density files (issue 25's data): one pw.x SCF per structure,
as this script states it (PBE, the norm-conserving ``Si.pbe-rrkj.UPF`` of Debian's quantum-espresso-data,
``--ecutwfc`` Ry, ecutrho 4× that, a Monkhorst–Pack ``--kpts`` mesh, conv_thr 1e-10 Ry per atom; for a metal
``--smearing`` eV of Fermi–Dirac; Al's ``Al.pz-vbc.UPF``, LDA), run in
``--workdir/<name>/`` (outdir ``out``, prefix ``<name>``), and prints one JSON line per structure: iterations, wall
and CPU seconds, energy (Ry), the electrons deepcharge reads back from ``charge-density.dat`` (also written to
``<name>/record.json``).

    python tools/qe_data.py -s input_examples/si64_one_shot/data/si64_0.CHGCAR.gz --workdir runs/qe_si64 [--np 2]
    python tools/qe_data.py -s si64_1.save/charge-density.dat.gz --workdir from_model --start predicted.dat
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ase.units import Rydberg

from deepcharge.io import read_density, read_structure

# Debian's quantum-espresso-data: norm-conserving, so ecutrho = 4 × ecutwfc holds the density (Al's is LDA)
SPECIES = {"Si": ("28.086", "Si.pbe-rrkj.UPF"), "Al": ("26.982", "Al.pz-vbc.UPF")}


def pseudo_dir() -> str:
    """Debian's quantum-espresso-data pseudopotentials, beside the pw.x on PATH."""
    return str(Path(shutil.which("pw.x")).resolve().parents[1] / "share" / "espresso" / "pseudo")


def pw_input(snapshot, prefix: str, ecutwfc: float, kpts, startingpot: str = "atomic", smearing: float = 0.0) -> str:
    """An SCF input for the structure of ``snapshot`` (Å, Cartesian); ``startingpot='file'`` starts from
    ``out/<prefix>.save/charge-density.dat``; ``smearing`` (eV) > 0: a metal's Fermi–Dirac occupations."""
    species = sorted(set(snapshot.symbols))
    rows = "\n".join(" ".join(f"{x:.10f}" for x in row) for row in snapshot.cell)
    atoms = "\n".join(f"{s} {x:.10f} {y:.10f} {z:.10f}" for s, (x, y, z) in zip(snapshot.symbols, snapshot.positions))
    kinds = "\n".join(f"{s} {SPECIES[s][0]} {SPECIES[s][1]}" for s in species)
    occupations = (f", occupations='smearing', smearing='fd', degauss={smearing / Rydberg:.6f}" if smearing > 0
                   else "")
    return f"""&control
  calculation='scf', prefix='{prefix}', outdir='./out', pseudo_dir='{pseudo_dir()}'
/
&system
  ibrav=0, nat={snapshot.natoms}, ntyp={len(species)}, ecutwfc={ecutwfc}, ecutrho={4 * ecutwfc}{occupations}
/
&electrons
  conv_thr={1e-10 * snapshot.natoms:.3e}, mixing_beta=0.5, startingpot='{startingpot}'
/
ATOMIC_SPECIES
{kinds}
CELL_PARAMETERS angstrom
{rows}
ATOMIC_POSITIONS angstrom
{atoms}
K_POINTS automatic
{kpts[0]} {kpts[1]} {kpts[2]} 0 0 0
"""


def structure_name(path: str) -> str:
    """The run's prefix: a QE density's ``<prefix>.save`` folder name, else the file name up to its first dot."""
    file = Path(path)
    if file.name.startswith("charge-density"):
        return file.parent.name.removesuffix(".save")
    return file.name.split(".")[0]


def run(path: str, args) -> dict:
    snapshot = read_structure(path)
    name = structure_name(path)
    folder = Path(args.workdir, name)
    startingpot = "atomic"
    if args.start:
        saved = folder / "out" / f"{name}.save"
        saved.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.start, saved / "charge-density.dat")
        startingpot = "file"
    record = run_pw(snapshot, name, folder, args, startingpot) | {"structure": path, "start": args.start}
    Path(record["folder"], "record.json").write_text(json.dumps(record) + "\n")
    return record


def run_pw(snapshot, name: str, folder: Path, args, startingpot: str = "atomic") -> dict:
    """pw.x for ``snapshot`` in ``folder`` (prefix ``name``): iterations, times, energy, the density's grid and
    electrons."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pw.in").write_text(pw_input(snapshot, name, args.ecutwfc, args.kpts, startingpot,
                                           args.smearing))
    command = ["pw.x", "-in", "pw.in"]
    if args.np > 1:
        command = ["mpirun", "--allow-run-as-root", "-np", str(args.np)] + command
    began = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    (folder / "pw.out").write_text(done.stdout)
    if done.returncode != 0:
        sys.exit(f"{folder}/pw.out: pw.x failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    out = done.stdout
    cpu = re.findall(r"PWSCF\s*:\s*(.+?)CPU", out)
    accuracies = [float(x) for x in re.findall(r"estimated scf accuracy\s+<\s+(\S+) Ry", out)]
    density = read_density(folder / "out" / f"{name}.save" / "charge-density.dat")
    return {"folder": str(folder), "startingpot": startingpot, "ecutwfc_ry": args.ecutwfc, "kpts": args.kpts,
            "processes": args.np, "wall_seconds": seconds, "pw_cpu": cpu[-1].strip() if cpu else None,
            "iterations": int(re.search(r"convergence has been achieved in\s+(\d+) iterations", out).group(1)),
            "energy_ry": float(re.search(r"^!\s+total energy\s+=\s+(\S+) Ry", out, re.MULTILINE).group(1)),
            "grid": list(density.grid_shape), "electrons": density.electrons(), "scf_accuracy_ry": accuracies}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--structures", nargs="+", required=True, help="density or structure files")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--ecutwfc", type=float, default=20.0, help="Ry (default 20)")
    parser.add_argument("--kpts", type=int, nargs=3, default=[2, 2, 2])
    parser.add_argument("--np", type=int, default=1, help="MPI processes (mpirun)")
    parser.add_argument("--smearing", type=float, default=0.0, help="eV of Fermi-Dirac smearing (a metal)")
    parser.add_argument("--start", help="start pw.x from this charge-density.dat (one structure; e.g. a prediction)")
    args = parser.parse_args(argv)
    if args.start and len(args.structures) != 1:
        parser.error("--start takes one structure")
    for path in args.structures:
        print(json.dumps(run(path, args)), flush=True)


if __name__ == "__main__":
    main()
