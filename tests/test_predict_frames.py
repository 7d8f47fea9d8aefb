"""predict on structures from the ecosystem (ASE trajectories, dpdata systems, LAMMPS dumps) and across ranks."""

import os

import ase.io
import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import si64_file, tiny_input
from test_distributed import free_port

from deepcharge.cli import main
from deepcharge.infer.predictor import Predictor
from deepcharge.io import read_density
from deepcharge.snapshot import Snapshot

GRID = ["--grid", "6", "5", "4"]
LARGE_GRID = ["40", "30", "21"]  # 25200 points: four prediction chunks, shared by two ranks


@pytest.fixture
def model(workdir):
    assert main(["train", str(tiny_input(workdir, numb_steps=2))]) == 0
    assert main(["freeze", "-o", "model.pth"]) == 0
    return "model.pth"


def two_frames():
    atoms = read_density(si64_file(1)).to_ase()
    moved = atoms.copy()
    moved.rattle(0.2, seed=3)
    return [atoms[:20], moved[:20]]


def check_frames(outputs, frames, model):
    predictor = Predictor.from_file(model, "cpu")
    for path, atoms in zip(outputs, frames):
        written = read_density(path)
        # the same atoms up to periodic images (dpdata wraps LAMMPS positions; npy systems hold float32)
        shift = (written.positions - atoms.positions) @ np.linalg.inv(atoms.cell[:])
        np.testing.assert_allclose(shift, np.round(shift), atol=1e-5)
        direct = predictor.predict_grid(read_density(path), (6, 5, 4))
        np.testing.assert_allclose(written.density, direct, rtol=1e-4, atol=1e-5)  # cube: 5 printed digits


def test_every_frame_of_a_trajectory_gets_a_file(model):
    frames = two_frames()
    ase.io.write("frames.extxyz", frames)
    assert main(["predict", "-m", model, "-s", "frames.extxyz", "-o", "rho.CHGCAR", *GRID]) == 0
    check_frames(["rho_0.CHGCAR", "rho_1.CHGCAR"], frames, model)
    assert not os.path.exists("rho.CHGCAR")


def test_deepmd_system_through_dpdata(model):
    import dpdata

    frames = two_frames()
    system = dpdata.System(frames[0], fmt="ase/structure")
    system.append(dpdata.System(frames[1], fmt="ase/structure"))
    system.to("deepmd/npy", "system")
    assert main(["predict", "-m", model, "-s", "system", "-o", "rho.cube", *GRID]) == 0
    check_frames(["rho_0.cube", "rho_1.cube"], frames, model)


def test_lammps_dump_types_map_to_the_model_species(model):
    frames = two_frames()
    lines = []
    for step, atoms in enumerate(frames):
        a, b, c = np.diag(atoms.cell)
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(atoms)),
                  "ITEM: BOX BOUNDS pp pp pp", f"0 {a}", f"0 {b}", f"0 {c}", "ITEM: ATOMS id type x y z"]
        lines += [f"{i + 1} 1 {x} {y} {z}" for i, (x, y, z) in enumerate(atoms.positions)]
    with open("traj.dump", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    assert main(["predict", "-m", model, "-s", "traj.dump", "-f", "lammps/dump", "-o", "rho.CHGCAR", *GRID]) == 0
    check_frames(["rho_0.CHGCAR", "rho_1.CHGCAR"], frames, model)


def predict_as_rank(rank: int, port: int, folder: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2", OMP_NUM_THREADS="1")
    os.chdir(folder)
    assert main(["-v", "WARNING", "predict", "-m", "model.pth", "-s", str(si64_file(2)), "-o", "split.CHGCAR",
                 "--grid", *LARGE_GRID]) == 0
    assert dist.is_initialized() and dist.get_world_size() == 2
    dist.destroy_process_group()


def test_two_ranks_split_the_grid_and_write_the_same_file(model, workdir):
    assert main(["predict", "-m", model, "-s", str(si64_file(2)), "-o", "whole.CHGCAR", "--grid", *LARGE_GRID]) == 0
    mp.spawn(predict_as_rank, args=(free_port(), str(workdir)), nprocs=2, join=True)
    assert (workdir / "split.CHGCAR").read_bytes() == (workdir / "whole.CHGCAR").read_bytes()


def test_worker_threads_give_the_sequential_densities(frozen_model):
    """Model batches spread over threads (each single-threaded) change nothing but the speed."""
    snapshot = read_density(si64_file(1))
    sequential = Predictor.from_file(frozen_model, "cpu")
    sequential.pool = None
    threaded = Predictor(sequential.module, sequential.metadata, "cpu", chunk_size=1000, workers=2)
    assert threaded.pool is not None
    np.testing.assert_array_equal(threaded.predict_grid(snapshot, (12, 10, 9)),
                                  sequential.predict_grid(snapshot, (12, 10, 9)))


def test_spacing_gives_the_smallest_fft_friendly_grid_that_meets_it():
    from deepcharge.infer.grid import fft_friendly_size, grid_shape_for

    assert [fft_friendly_size(n) for n in (1, 7, 37, 49, 73, 97, 121)] == [1, 8, 40, 50, 75, 100, 125]
    snapshot = Snapshot(cell=np.diag([5.5, 10.862, 4.0]), positions=np.zeros((1, 3)), symbols=["Si"], density=None)
    shape = grid_shape_for(snapshot, None, 0.15)
    assert shape == (40, 75, 27)  # ⌈L/h⌉ = 37, 73, 27
    assert all(length / n <= 0.15 for length, n in zip((5.5, 10.862, 4.0), shape))
