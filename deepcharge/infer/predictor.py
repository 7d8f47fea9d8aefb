"""Evaluate a frozen model (any backend) at probe points or on whole grids, in chunks of bounded memory."""

import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import torch

from deepcharge.analysis.electrons import expected_electrons
from deepcharge.chunks import PREDICTION_CHUNK
from deepcharge.data.inputs import InputSpec, Structure, probe_inputs, structure_inputs
from deepcharge.errors import DeepChargeError
from deepcharge.models.upgrade import CONFIG_VERSION, upgrade_model_config
from deepcharge.snapshot import Snapshot
from deepcharge.utils import quiet_torchscript, resolve_device

METADATA_FILE = "deepcharge.json"
# probes per model call on a CPU: small enough that the per-neighbour tensors stay in the cache (faster than
# whole chunks for every backend; README's results); a GPU takes whole chunks
CPU_MODEL_BATCH = 128


def load_frozen(path, device) -> Tuple[torch.jit.ScriptModule, dict]:
    """The TorchScript module and the metadata that ``deepcharge freeze`` stored with it (model section upgraded)."""
    path = Path(path)
    if not path.is_file():
        raise DeepChargeError(f"{path}: no such model file; freeze a checkpoint with `deepcharge freeze`")
    extra = {METADATA_FILE: ""}
    try:
        with quiet_torchscript():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as err:  # torch raises RuntimeError/ValueError/zip errors for foreign files
        from deepcharge.train.checkpoint import torch_archive_kind

        if torch_archive_kind(path) == "checkpoint":
            raise DeepChargeError(f"{path}: a training checkpoint, not a frozen model; freeze it first: "
                                  f"`deepcharge freeze -c {path} -o frozen_model.pth`") from None
        raise DeepChargeError(f"{path}: not a frozen deepcharge model ({type(err).__name__})") from None
    if not extra[METADATA_FILE]:
        raise DeepChargeError(f"{path}: not a frozen deepcharge model (no {METADATA_FILE} inside)")
    metadata = json.loads(extra[METADATA_FILE])
    if "model" in metadata:  # every file freeze writes has it; predicting needs only the module
        upgrade_model_config(metadata["model"], metadata.get("config_version", 0), path)
        metadata["config_version"] = CONFIG_VERSION
    return module, metadata


class Predictor:
    """Densities from a model: a frozen file (``from_file``) or a live module (``Predictor(module)``).

    On a CPU, a frozen model's batches run on ``workers`` threads (default: torch's intra-op thread count), each
    single-threaded: batches of 128 probes are too small to share among threads, and whole batches side by side
    use every core (1.75× faster on 2 cores than one batch on 2 threads). TorchScript releases the GIL.
    """

    def __init__(self, module, metadata: Optional[dict] = None, device=None, chunk_size: int = PREDICTION_CHUNK,
                 model_batch: Optional[int] = None, workers: Optional[int] = None):
        self.module = module
        self.metadata = metadata or {}
        self.device = device or next(module.parameters()).device
        self.dtype = next(module.parameters()).dtype
        self.chunk_size = chunk_size
        on_cpu = torch.device(self.device).type == "cpu"
        self.model_batch = model_batch or (CPU_MODEL_BATCH if on_cpu else chunk_size)
        if workers is None:
            workers = torch.get_num_threads() if on_cpu and isinstance(module, torch.jit.ScriptModule) else 1
        self.pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) \
            if workers > 1 else None
        self.type_map = list(module.type_map)
        self.spec = InputSpec.of(module)

    @classmethod
    def from_file(cls, path, device: str = "auto", chunk_size: int = PREDICTION_CHUNK) -> "Predictor":
        torch_device = resolve_device(device)
        module, metadata = load_frozen(path, torch_device)
        module.eval()
        return cls(module, metadata, torch_device, chunk_size)

    def expected_electrons(self, snapshot: Snapshot) -> float:
        """The electrons ``snapshot``'s structure should hold, from the per-species counts of the training data."""
        return expected_electrons(snapshot.symbols, self.metadata.get("electrons_per_atom") or {},
                                  snapshot.source or "structure")

    def structure(self, snapshot: Snapshot) -> Structure:
        return Structure.from_snapshot(snapshot, self.type_map, self.device, self.dtype)

    def atom_states(self, structure: Structure) -> Dict[str, torch.Tensor]:
        """What the backend computes once per structure (atom states of message-passing models)."""
        with torch.no_grad():
            return self.module.atom_states(structure_inputs(structure, self.spec))

    def predict_points(self, snapshot: Snapshot, points: np.ndarray) -> np.ndarray:
        """Density (e/Å³) at Cartesian ``points`` (P, 3) of ``snapshot``'s structure."""
        structure = self.structure(snapshot)
        states = self.atom_states(structure)
        out = np.empty(len(points))
        for start in range(0, len(points), self.chunk_size):
            chunk = torch.as_tensor(points[start:start + self.chunk_size], dtype=self.dtype, device=self.device)
            out[start:start + len(chunk)] = self.evaluate(structure, states, chunk)
        return out

    def iter_grid(self, snapshot: Snapshot, shape, order: str = "C", part: Tuple[int, int] = (0, 1)
                  ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """(flat C-order indices, densities) of consecutive chunks of the grid ``shape`` over the cell.

        ``order`` "F" walks the grid x fastest (the CHGCAR order). ``part`` (k, n) yields only chunks k, k + n,
        k + 2n, ...: one of n processes' share.
        """
        structure = self.structure(snapshot)
        states = self.atom_states(structure)
        total = int(np.prod(shape))
        for start in range(part[0] * self.chunk_size, total, part[1] * self.chunk_size):
            index = np.arange(start, min(start + self.chunk_size, total))
            if order == "F":
                index = np.ravel_multi_index(np.unravel_index(index, shape, order="F"), shape)
            points = torch.as_tensor(snapshot.grid_points(index, shape), dtype=self.dtype, device=self.device)
            yield index, self.evaluate(structure, states, points)

    def chunk_count(self, shape) -> int:
        """How many chunks :meth:`iter_grid` splits the grid ``shape`` into."""
        return -(-int(np.prod(shape)) // self.chunk_size)

    def predict_grid(self, snapshot: Snapshot, shape) -> np.ndarray:
        """The density on the whole grid ``shape`` (nx, ny, nz)."""
        density = np.empty(int(np.prod(shape)))
        for index, values in self.iter_grid(snapshot, shape):
            density[index] = values
        return density.reshape(shape)

    def evaluate(self, structure: Structure, states: Dict[str, torch.Tensor], points: torch.Tensor) -> np.ndarray:
        """Densities at ``points`` (a tensor on the device) given the structure's ``atom_states``."""
        with torch.no_grad():
            inputs = probe_inputs(structure, points, self.spec)
        batches = [{key: value[start:start + self.model_batch] for key, value in inputs.items()}
                   for start in range(0, points.shape[0], self.model_batch)]
        run = partial(self.probe_density, states)
        values = list(self.pool.map(run, batches)) if self.pool is not None else [run(batch) for batch in batches]
        return torch.cat(values).to("cpu", torch.float64).numpy()

    def probe_density(self, states: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The model on one batch of probe inputs (in whichever thread runs it: no_grad is per thread)."""
        with torch.no_grad():
            return self.module.probe_density(states, batch)
