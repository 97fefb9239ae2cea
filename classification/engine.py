"""mmengine glue shared by the tools of all three tasks (classification, segmentation, detection).

- CPU distributed runs: mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
  ``device_ids=[local_rank]``; on a host without CUDA we initialise the gloo process group first (the Runner then
  skips its own init) and wrap with ``device_ids=None``.
- Checkpoints: written atomically (temporary file in the same directory, fsync, rename) through the
  ``atomic_local`` file backend (a new backend name, registered on import), and read with
  ``torch.load(weights_only=True)`` and an allow-list of the few non-tensor types mmengine stores (torch ≥ 2.6
  refuses them by default, mmengine 0.10.7 does not pass the flag) once :func:`install_safe_checkpoint_loading`
  has been called (the tools do; importing the package leaves mmengine's loaders alone); a file that cannot be read
  so is one line naming it. Whether its weights fit a model: :mod:`classification.checkpoints`.
"""
from __future__ import annotations

import argparse
import gc
import os
import os.path as osp
import pickle
import tempfile
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from classification.errors import MissingPathError, UserError


def _history_buffer_getattr(obj, name: str):
    """Stand-in for ``getattr`` while unpickling: mmengine pickles HistoryBuffer's statistics methods as
    ``getattr(HistoryBuffer, 'mean')``; allowing the real getattr would let a checkpoint reach any attribute."""
    if obj is HistoryBuffer and name in {"min", "max", "current", "mean", *HistoryBuffer._statistics_methods}:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed")


# What an mmengine checkpoint holds besides tensors: the message hub's HistoryBuffers (numpy arrays and their
# statistics methods inside) and numpy scalars in the meta / scheduler states.
_np_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
SAFE_CHECKPOINT_GLOBALS = [
    HistoryBuffer, np.ndarray, np.dtype, _np_multiarray._reconstruct, _np_multiarray.scalar,
    *{type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")},
    (_history_buffer_getattr, "builtins.getattr"),
    argparse.Namespace,  # the ``args`` entry of timm / DeiT training checkpoints: a plain attribute container
]


def _load_reason(err: BaseException) -> str:
    """A short reason from a torch.load failure (its weights-only message is long and mostly boilerplate)."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = "weights-only loading refused it: " + text.split("WeightsUnpickler error:", 1)[1].split(
            "Check the documentation", 1)[0]
    text = " ".join(text.split()).strip(" .")
    if isinstance(err, KeyError):
        text = f"invalid pickle data, KeyError {text}"
    text = text or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_checkpoint_file(filename: str, map_location=None):
    """torch.load with weights_only=True, allowing only the types in SAFE_CHECKPOINT_GLOBALS; a ``.safetensors``
    file (timm's hub format: a flat dict of tensors) is read with safetensors.

    Raises :class:`~classification.errors.MissingPathError` for a missing file and a one-line
    :class:`~classification.errors.UserError` naming the file for one torch cannot read this way (not a checkpoint,
    truncated, or holding objects outside the allow-list)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise MissingPathError(f"checkpoint not found: {filename}")
    try:
        if filename.endswith(".safetensors"):
            from safetensors.torch import load_file
            device = map_location if isinstance(map_location, (str, torch.device)) else "cpu"
            return load_file(filename, device=str(device))
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle, zip, weights-only refusals: all mean "not a checkpoint we can read"
        raise UserError(f"{filename} is not a readable torch checkpoint ({_load_reason(err)})") from err


def load_from_local(filename: str, map_location=None):
    """mmengine's local-file scheme, weights-only (mmengine logs the name after ``load_from_``)."""
    return load_checkpoint_file(filename, map_location)


def install_safe_checkpoint_loading() -> None:
    """Make mmengine read every local checkpoint through :func:`load_checkpoint_file` (weights-only, allow-list).

    Process-wide: it replaces the loader of mmengine's local-file scheme (prefix ``""``) in ``CheckpointLoader``, the
    one path through which the Runner's ``load_from`` / ``resume`` and model ``init_cfg`` checkpoints are read.
    Importing this package changes nothing; the command-line tools (training, testing, conversion, robustness,
    demo, reproduction) call this once at start. Idempotent."""
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local, force=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(directory: str) -> list:
    """Delete the temporary files of :func:`atomic_write` that writers killed mid-write (SIGKILL, out of memory) left
    in ``directory``: ``.tmp-<pid>-…`` files whose process no longer runs on this host. Returns their paths.
    (One host writes a work dir's checkpoints — rank 0 — so a pid that is not running here is a dead writer.)"""
    removed = []
    for name in os.listdir(directory):
        parts = name.split("-", 2)
        if name.startswith(".tmp-") and len(parts) == 3 and parts[1].isdigit() and not _process_exists(int(parts[1])):
            try:
                os.unlink(osp.join(directory, name))
                removed.append(osp.join(directory, name))
            except FileNotFoundError:
                pass
    return removed


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """``write(tmp)`` into a temporary file ``.tmp-<pid>-…`` next to ``path``, fsync, then ``os.replace`` it onto
    ``path``: readers see the old file or the whole new one, never a truncated one. An exception removes the
    temporary file; one left by a killed writer is removed by the next write into that directory
    (:func:`remove_stale_temporaries`)."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{os.getpid()}-", suffix="-" + osp.basename(path))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions of a new file
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """:func:`atomic_write` of ``text`` (UTF-8)."""
    atomic_write(path, _write_bytes(text.encode("utf-8")))


def _write_bytes(data: bytes) -> Callable[[str], None]:
    def write(path: str) -> None:
        with open(path, "wb") as f:
            f.write(data)
    return write


@register_backend("atomic_local")
class AtomicLocalBackend(LocalBackend):
    """Local files written atomically (:func:`atomic_write`): a killed save never leaves a truncated checkpoint or
    pointer file."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), _write_bytes(obj))

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        self.put(obj.encode(encoding), filepath)


def init_distributed(launcher: str) -> None:
    """Initialise the process group before the Runner: gloo on a host without CUDA, else leave it to mmengine."""
    if launcher == "none" or dist.is_initialized() or torch.cuda.is_available():
        return
    if launcher == "slurm":
        os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
        os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
        os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
    dist.init_process_group(backend="gloo")


def release_dataloader_workers(runner) -> None:
    """Stop the persistent data-loader workers of ``runner``'s built loops now, while their queues are alive.

    The Runner sits in reference cycles, so its loaders are freed by a cyclic collection. There the queues' weakref
    finalisers (``multiprocessing.util.Finalize``: stop the feeder thread) run before the loader iterator's
    ``__del__``, whose shutdown message then never reaches the workers: each join times out after
    ``MP_STATUS_CHECK_INTERVAL`` (5 s) and the worker is terminated. Dropping the iterator here lets reference
    counting run ``__del__`` at once, a clean shutdown. Call it before dropping the Runner."""
    for name in ("_train_loop", "_val_loop", "_test_loop"):
        loader = getattr(getattr(runner, name, None), "dataloader", None)  # unbuilt loops are still dicts
        if isinstance(loader, torch.utils.data.DataLoader) and getattr(loader, "_iterator", None) is not None:
            loader._iterator = None


def finish_distributed() -> None:
    """Tear the process group down while the interpreter is fully alive.

    A gloo group freed during interpreter shutdown ends the rank with std::terminate (SIGABRT) after a good run.
    ``destroy_process_group`` alone is not enough: mmengine's Runner sits in reference cycles, so its DDP
    reducer (which holds the group) outlives ``del runner`` until a cyclic collection, possibly at shutdown.
    Callers drop their Runner first; the collection here frees it before the group is destroyed."""
    if dist.is_initialized():
        dist.barrier()
        gc.collect()
        dist.destroy_process_group()


def adapt_config_to_host(cfg, launcher: str) -> None:
    """CPU-only distributed run: DDP without device_ids (mmengine's default wrapper assumes a GPU per rank)."""
    if launcher != "none" and not torch.cuda.is_available():
        wrapper = dict(cfg.get("model_wrapper_cfg") or dict(type="MMDistributedDataParallel"))
        wrapper["device_ids"] = None
        cfg.model_wrapper_cfg = wrapper
