"""Data-parallel training through torch.distributed (gloo on the CPU, as torchrun would run it)."""

import os
import socket

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import si64_file, tiny_input

from deepcharge.cli import main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_as_rank(rank: int, world_size: int, port: int, folder: str, input_file: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), OMP_NUM_THREADS="1")
    os.chdir(folder)
    assert main(["train", input_file]) == 0
    assert dist.is_initialized() and dist.get_world_size() == world_size  # it really ran data-parallel
    dist.destroy_process_group()
    # leave without running C++ static destructors: gloo's teardown now and then aborts a finished worker
    # ("terminate called without an active exception", SIGABRT) after every file has been written
    os._exit(0)


def test_two_processes_follow_the_one_process_loss_curve(workdir):
    """Same global batch and seed: the 2-rank gloo run's lcurve equals the 1-process one (float tolerance)."""
    input_file = tiny_input(workdir, backend="painn", numb_steps=10,
                            training_data={"systems": [str(si64_file(0)), str(si64_file(4))],
                                           "probes_per_system": 500, "batch_size": 32, "structures_per_step": 2})
    single = workdir / "single"
    single.mkdir()
    os.chdir(single)
    assert main(["train", str(input_file)]) == 0
    double = workdir / "double"
    double.mkdir()
    mp.spawn(train_as_rank, args=(2, free_port(), str(double), str(input_file)), nprocs=2, join=True)
    one = np.genfromtxt(single / "lcurve.out", names=True)
    two = np.genfromtxt(double / "lcurve.out", names=True)
    assert one["step"].tolist() == two["step"].tolist() == [0, 5, 10]
    for name in ("rmse_val", "rmse_trn", "eps_mae_val", "eps_mae_trn", "lr"):
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4)
    assert one["eps_mae_val"][-1] != one["eps_mae_val"][0]  # it did train
    assert (double / "model.ckpt-10.pt").is_file() and (double / "out.json").is_file()
