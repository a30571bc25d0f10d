"""Training: a small, readable loop (``fit``), ``evaluate``, safe checkpoints, and a command line.

``fit`` trains any classifier on a ``Dataset`` (or ``(images, labels)`` tensors) with AdamW, a cosine
learning-rate schedule, a ``tqdm`` progress bar, mixed precision on CUDA and a per-epoch history. It also
runs unchanged under ``torchrun``: when a process group is initialised it wraps the model in
DistributedDataParallel and gives each process its shard of every global batch.

Command line (``python -m course_pkg.train --help`` lists every option)::

    # one device (a GPU when there is one, else the CPU)
    python -m course_pkg.train --model resnet_small --attention se --dataset clutter --epochs 8 \\
        --out se.pt

    # one machine, 8 GPUs: one process per GPU (NCCL); --batch-size stays the *global* batch
    torchrun --standalone --nproc_per_node 8 -m course_pkg.train --model resnet_small --attention se \\
        --dataset clutter --epochs 8 --batch-size 512 --out se.pt

    # two machines with 8 GPUs each: run this on both, with --node_rank 0 on the first and 1 on the second;
    # host:port is an address of the first machine that the second can reach
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d \\
        --rdzv_endpoint host:29500 -m course_pkg.train --model resnet_small --dataset clutter --out se.pt

    # two CPU processes (Gloo), e.g. to try the distributed path on a laptop
    torchrun --standalone --nproc_per_node 2 -m course_pkg.train --device cpu --model simple_cnn ...

How the distributed run works:

* ``torchrun`` starts one process per device and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; the
  command line then joins the process group (NCCL on GPUs, Gloo on CPUs) and pins process ``LOCAL_RANK`` to
  GPU ``LOCAL_RANK``.
* Every process builds the same model from the same seed and draws the same data set; a
  ``DistributedSampler`` gives each process a disjoint shard of every epoch's shuffled order, so
  ``--batch-size`` (the global batch) is split into ``batch_size / world_size`` images per process.
* DistributedDataParallel averages the gradients across processes after each backward pass, so every
  process takes the same optimiser step as one process on the whole global batch would.
* Only rank 0 prints, shows a progress bar and writes the checkpoint; accuracies are summed over all ranks.
* BatchNorm is the one layer that breaks this equivalence: each process normalises with the statistics of
  its own shard. ``--sync-bn`` (CUDA only) swaps in SyncBatchNorm to use the global batch's statistics. The
  test that compares a 2-process run with a 1-process run uses ``simple_cnn``, which has GroupNorm
  (per-image statistics) and no dropout, so the two runs must agree up to float rounding.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from .env import get_device, seed_everything

__all__ = [
    "MODELS", "Checkpoint", "History", "SimpleCNN",
    "build_model", "evaluate", "fit", "load_checkpoint", "main", "resolve_builder", "save_checkpoint",
    "simple_cnn",
]

DataArg = Union[Dataset, tuple, Any]


# ------------------------------------------------------------------------------------------------
# A small CNN without BatchNorm (the model of the distributed test and the data tests)
# ------------------------------------------------------------------------------------------------

class SimpleCNN(nn.Module):
    """Three conv-GroupNorm-ReLU stages with 2x2 max pooling, global average pooling and a linear head.

    No BatchNorm and no dropout: its output for an image depends on that image only, so a distributed run
    and a single-process run on the same global batch compute the same thing.

    Shapes: ``(B, in_chans, H, W) -> (B, num_classes)``.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 32) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_chans", in_chans), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} is not valid; use a positive integer")
        self.in_chans = in_chans
        layers: list[nn.Module] = []
        cin = in_chans
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(min(8, cout), cout), nn.ReLU()]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"SimpleCNN expects (B, {self.in_chans}, H, W) images, got shape {tuple(x.shape)}")
        x = self.features(x)                       # (B, 4 * width, H / 4, W / 4)
        return self.head(x.mean(dim=(2, 3)))       # (B, num_classes)


def simple_cnn(num_classes: int = 10, in_chans: int = 3, width: int = 32) -> SimpleCNN:
    """Build a :class:`SimpleCNN` (about 100k parameters at ``width=32``)."""
    return SimpleCNN(num_classes, in_chans, width)


# ------------------------------------------------------------------------------------------------
# Model builders by name
# ------------------------------------------------------------------------------------------------

MODELS: dict[str, str] = {
    "simple_cnn": "course_pkg.train:simple_cnn",
    "resnet_small": "course_pkg.resnet:resnet_small",
    "resnet18": "course_pkg.resnet:resnet18",
    "vit": "course_pkg.vit:VisionTransformer",
    "vit_tiny": "course_pkg.vit:vit_tiny",
    "vit_small": "course_pkg.vit:vit_small",
}


def resolve_builder(spec: str) -> Callable[..., nn.Module]:
    """A model builder from a name in :data:`MODELS` or a ``"package.module:function"`` string."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"model={spec!r} is not valid; use one of {sorted(MODELS)} or 'package.module:function'")
    target = MODELS.get(spec, spec)
    if ":" not in target:
        raise ValueError(f"model={spec!r} is not known; use one of {sorted(MODELS)} or 'package.module:function'")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"model={spec!r}: cannot import module {module_name!r} ({err})") from err
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ValueError(f"model={spec!r}: module {module_name!r} has no callable {attr!r}")
    return builder


def build_model(spec: str, kwargs: Optional[Mapping[str, Any]] = None, **data_kwargs: Any) -> nn.Module:
    """Build a model: ``kwargs`` always go to the builder; ``data_kwargs`` (``num_classes``, ``in_chans``,
    ``img_size``, set by the data) only when the builder names them or takes ``**kwargs``."""
    builder = resolve_builder(spec)
    params = inspect.signature(builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    merged = {k: v for k, v in data_kwargs.items() if k in params or takes_any}
    merged.update(kwargs or {})
    return builder(**merged)


# ------------------------------------------------------------------------------------------------
# Data arguments, distributed helpers, mixed precision
# ------------------------------------------------------------------------------------------------

def _as_dataset(data: DataArg, name: str) -> Dataset:
    """A Dataset from a Dataset, an object with ``.images`` and ``.labels``, or an ``(images, labels)`` pair."""
    from .data import ImageDataset

    if isinstance(data, Dataset):
        return data
    if hasattr(data, "images") and hasattr(data, "labels"):
        return ImageDataset(data.images, data.labels)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return ImageDataset(data[0], data[1])
    raise TypeError(f"{name} must be a torch Dataset, an (images, labels) pair of tensors, or an object with "
                    f".images and .labels (e.g. make_clutter's result); got {type(data).__name__}")


def _world() -> tuple[int, int]:
    """(rank, world_size) of the process group, or (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum numbers over all processes (a no-op in a single process)."""
    _, world = _world()
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _amp_setup(amp: Union[str, bool, None], device: torch.device) -> tuple[Optional[torch.dtype], bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for ``amp`` on ``device``."""
    choices = ("auto", "off", "fp16", "bf16")
    if amp is None or amp is False:
        amp = "off"
    elif amp is True:
        amp = "auto"
    if amp not in choices:
        raise ValueError(f"amp={amp!r} is not valid; use one of {choices} (or True/False)")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, False
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device, but training runs on {device.type!r}; "
                             "use amp='bf16' or amp='off'")
        return torch.float16, True
    return torch.bfloat16, False


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


class History:
    """The per-epoch record of a :func:`fit` run.

    ``history.records`` is a list of dicts (``epoch, train_loss, train_acc, val_loss, val_acc, lr,
    time_s``); ``history["val_acc"]`` is one key over all epochs; ``history.last`` the final epoch.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, key: str) -> list[Any]:
        if not self.records or key not in self.records[0]:
            known = sorted(self.records[0]) if self.records else []
            raise KeyError(f"history has no {key!r}; it records {known}")
        return [r[key] for r in self.records]

    @property
    def last(self) -> dict[str, Any]:
        if not self.records:
            raise IndexError("the history is empty: fit ran no epoch")
        return self.records[-1]

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, last={self.records[-1] if self.records else None})"


# ------------------------------------------------------------------------------------------------
# Training and evaluation
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def _eval_pass(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
               amp_dtype: Optional[torch.dtype], num_workers: int = 0) -> tuple[float, float, float]:
    """(loss sum, correct, count) over this process's share of ``dataset`` (every world_size-th item)."""
    rank, world = _world()
    shard = dataset if world == 1 else Subset(dataset, range(rank, len(dataset), world))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    loss_sum = correct = count = 0.0
    try:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, amp_dtype):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += y.numel()
    finally:
        model.train(was_training)
    return loss_sum, correct, count


def evaluate(model: nn.Module, data: DataArg, batch_size: int = 256, device: Union[str, torch.device, None] = None,
             amp: Union[str, bool] = "off") -> float:
    """Top-1 accuracy of ``model`` on ``data`` (a Dataset or ``(images, labels)``), in [0, 1].

    Runs on ``device`` (default: where the model's parameters are) in eval mode, and puts the model back
    in the mode it was in. Inside a process group, each process scores a share and the counts are summed.
    """
    dataset = _as_dataset(data, "data")
    if len(dataset) == 0:
        raise ValueError("data is empty: there is nothing to evaluate")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not valid; use a positive integer")
    dev = torch.device(device) if device is not None else _model_device(model)
    model.to(dev)
    amp_dtype, _ = _amp_setup(amp, dev)
    _, correct, count = _eval_pass(model, dataset, batch_size, dev, amp_dtype)
    correct, count = _all_sum([correct, count], dev)
    return correct / count


def fit(model: nn.Module, train_data: DataArg, val_data: Optional[DataArg] = None, *, epochs: int = 5,
        batch_size: int = 128, lr: float = 2e-3, weight_decay: float = 0.05, warmup_epochs: float = 0.0,
        label_smoothing: float = 0.0, grad_clip: Optional[float] = None,
        device: Union[str, torch.device, None] = None, seed: int = 0, amp: Union[str, bool] = "auto",
        progress: bool = True, num_workers: int = 0, drop_last: bool = False,
        callback: Optional[Callable[[dict[str, Any]], None]] = None) -> History:
    """Train a classifier with AdamW and a cosine schedule; returns the per-epoch :class:`History`.

    Args:
        model: maps ``(B, C, H, W)`` images to ``(B, num_classes)`` logits; trained in place.
        train_data, val_data: a Dataset of ``(image, label)``, an ``(images, labels)`` pair of tensors, or an
            object with ``.images`` and ``.labels`` such as :func:`course_pkg.data.make_clutter`'s result.
        epochs: passes over ``train_data``.
        batch_size: the *global* batch: inside a process group of ``W`` processes each takes
            ``batch_size / W`` images per step (it must divide evenly).
        lr: peak learning rate; it follows a cosine from ``lr`` to 0, after ``warmup_epochs`` of linear warm-up.
        weight_decay: AdamW's decoupled weight decay (not applied to biases and normalisation weights).
        label_smoothing: passed to the cross-entropy loss.
        grad_clip: clip the gradient norm to this value (None: no clipping).
        device: where to train; default :func:`course_pkg.get_device` (CUDA, then MPS, then CPU).
        seed: seeds the shuffling (and anything random in transforms); the same seed repeats the run.
        amp: mixed precision: ``"auto"`` (bf16 on CUDA GPUs that support it, else fp16 with a GradScaler;
            off on CPU), ``"bf16"``, ``"fp16"`` (CUDA only) or ``"off"``.
        progress: show a ``tqdm`` progress bar (only rank 0 does in a distributed run).
        num_workers: DataLoader worker processes.
        drop_last: drop the last, smaller batch of every epoch.
        callback: called with each epoch's record (a dict) after the epoch.

    Returns:
        :class:`History` with ``epoch, train_loss, train_acc, val_loss, val_acc, lr, time_s`` per epoch
        (``val_*`` are None without ``val_data``), measured over all processes.
    """
    for name, value, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                            ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ValueError(f"{name}={value!r} is not valid; use an integer >= {lo}")
    for name, value in (("lr", lr), ("weight_decay", weight_decay), ("warmup_epochs", warmup_epochs),
                        ("label_smoothing", label_smoothing)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}={value!r} is not valid; use a finite number >= 0")
    if lr == 0:
        raise ValueError("lr=0 is not valid; use a positive learning rate such as 1e-3")
    if label_smoothing >= 1:
        raise ValueError(f"label_smoothing={label_smoothing!r} is not valid; use a number in [0, 1)")
    if grad_clip is not None and not (isinstance(grad_clip, (int, float)) and grad_clip > 0):
        raise ValueError(f"grad_clip={grad_clip!r} is not valid; use a positive number or None")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    train_set = _as_dataset(train_data, "train_data")
    val_set = _as_dataset(val_data, "val_data") if val_data is not None else None
    if len(train_set) == 0:
        raise ValueError("train_data is empty: there is nothing to train on")

    rank, world = _world()
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} is the global batch and must be divisible by the "
                         f"world size {world}; use a multiple of {world}")
    local_batch = batch_size // world
    dev = torch.device(device) if device is not None else get_device()
    if world > 1 and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    amp_dtype, use_scaler = _amp_setup(amp, dev)
    seed_everything(seed + rank)   # transforms differ across ranks; the shuffled order comes from the sampler

    model.to(dev)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    # one shuffled order per epoch (seed + epoch), split across ranks; identical to 1 process when world == 1
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                 drop_last=False)
    loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler, num_workers=num_workers,
                        pin_memory=dev.type == "cuda", drop_last=drop_last,
                        persistent_workers=num_workers > 0)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} with drop_last=True leaves no batch of {len(train_set)} images; "
                         "use a smaller batch_size or drop_last=False")

    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() > 1 else no_decay).append(p)       # biases and norm weights: no decay
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    total = epochs * steps_per_epoch
    warmup = int(round(warmup_epochs * steps_per_epoch))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="training", unit="batch", dynamic_ncols=True)
    history = History()
    try:
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            net.train()
            start = time.perf_counter()
            loss_sum = correct = count = 0.0
            lr_now = optimizer.param_groups[0]["lr"]
            for x, y in loader:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                with _autocast(dev, amp_dtype):
                    logits = net(x)                                     # (B, num_classes)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()                           # DDP averages gradients here
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                n = y.numel()
                loss_sum += loss.item() * n
                correct += (logits.argmax(dim=1) == y).sum().item()
                count += n
                if bar is not None:
                    bar.update(1)
                    bar.set_description(f"epoch {epoch + 1}/{epochs}")
                    bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.3f}")
            loss_sum, correct, count = _all_sum([loss_sum, correct, count], dev)
            if world > 1:   # BatchNorm running statistics: every rank takes rank 0's, as the saved model has
                for buf in model.buffers():
                    dist.broadcast(buf, 0)
            record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / count,
                                      "train_acc": correct / count, "val_loss": None, "val_acc": None,
                                      "lr": lr_now}
            if val_set is not None:
                v_loss, v_correct, v_count = _all_sum(list(_eval_pass(model, val_set, max(local_batch, 256), dev,
                                                                      amp_dtype, num_workers)), dev)
                record["val_loss"], record["val_acc"] = v_loss / v_count, v_correct / v_count
                if bar is not None:
                    bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_acc']:.3f}",
                                    val_acc=f"{record['val_acc']:.3f}")
            record["time_s"] = time.perf_counter() - start
            history.append(record)
            if callback is not None:
                callback(record)
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------

class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns."""

    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]


_FORMAT = "course_pkg.checkpoint/1"


def _check_meta(value: Any, where: str = "meta") -> None:
    """Metadata must be plain data (what ``torch.load(weights_only=True)`` and JSON both accept)."""
    if value is None or type(value) in (bool, int, float, str):   # exact types: subclasses pickle as code
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _check_meta(v, f"{where}[{i}]")
        return
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"{where} has a non-string key {k!r}; checkpoint metadata keys must be strings")
            _check_meta(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}; checkpoint metadata may only hold None, bool, int, "
                    "float, str, lists and dicts (so it loads with weights_only=True)")


def save_checkpoint(path: Union[str, os.PathLike], model: Union[nn.Module, Mapping[str, torch.Tensor]],
                    meta: Optional[Mapping[str, Any]] = None, dtype: Optional[torch.dtype] = None) -> Path:
    """Save a model's state dict and plain-data ``meta`` to ``path`` (written atomically).

    Args:
        model: a module (a DDP wrapper is unwrapped) or a state dict.
        meta: plain data (numbers, strings, lists, dicts) about the model: builder, kwargs, data, accuracy.
        dtype: store floating-point tensors in this dtype (e.g. ``torch.float16`` halves the file).
    """
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    meta = dict(meta or {})
    _check_meta(meta)
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype={dtype} is not valid; use a floating-point dtype such as torch.float16")
    out = {}
    for k, v in state.items():
        v = v.detach().to("cpu").clone()
        out[k] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": _FORMAT, "state_dict": out, "meta": meta}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Union[str, os.PathLike], model: Optional[nn.Module] = None,
                    map_location: Union[str, torch.device] = "cpu", strict: bool = True) -> Checkpoint:
    """Load a checkpoint safely (``torch.load(weights_only=True)``: tensors and plain data only, no code).

    Args:
        path: a file written by :func:`save_checkpoint` (a bare state dict also loads, with empty meta).
        model: when given, the weights are loaded into it (cast to its dtypes).
        strict: passed to ``load_state_dict``.

    Returns:
        :class:`Checkpoint` ``(state_dict, meta)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint path={str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors come in several types; all mean "not a safe weights file"
        raise ValueError(f"refusing to load {str(path)!r}: it is not a plain weights file that loads with "
                         f"weights_only=True (it may hold code); {type(err).__name__}: {err}") from err
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        state, meta = obj["state_dict"], dict(obj.get("meta") or {})
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, meta = obj, {}
    else:
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__} that is neither a course checkpoint nor a "
                         "state dict")
    if model is not None:
        model.load_state_dict(state, strict=strict)
    return Checkpoint(state, meta)


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m course_pkg.train",
        description="Train a classifier on one of the course's data sets; runs under torchrun too.")
    p.add_argument("--model", default="resnet_small",
                   help=f"a name in {sorted(MODELS)} or 'package.module:function' (default resnet_small)")
    p.add_argument("--attention", default=None, help="passed to the builder: none, se or cbam (ResNets)")
    p.add_argument("--kwargs", default="{}", help="more builder arguments, as a JSON object")
    p.add_argument("--dataset", default="clutter", choices=("clutter", "digits", "cifar10"))
    p.add_argument("--n-train", type=int, default=None, help="training images (clutter default 4000)")
    p.add_argument("--n-val", type=int, default=None, help="validation images (clutter default 500)")
    p.add_argument("--n-test", type=int, default=None, help="held-out test images (clutter default 1000)")
    p.add_argument("--image-size", type=int, default=48, help="clutter image side in pixels")
    p.add_argument("--num-classes", type=int, default=6, help="clutter shapes (2 to 6)")
    p.add_argument("--data-seed", type=int, default=0,
                   help="clutter: train set seed; validation uses seed+1, test seed+2; digits: split seed")
    p.add_argument("--data-root", default="data", help="cifar10: folder of cifar-10-batches-py")
    p.add_argument("--download", action="store_true", help="cifar10: download when missing")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128, help="the global batch (split across processes)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0, help="model initialisation and shuffling")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "fp16", "bf16"))
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm in a multi-GPU run")
    p.add_argument("--half", action="store_true", help="store the weights in float16")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--out", default=None, help="checkpoint path (.pt); nothing is saved without it")
    return p


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')}={value} is not valid; use a positive integer")


def _load_data(args: argparse.Namespace) -> dict[str, Any]:
    """Train/val/test Datasets, their specs (how to draw them again), and the model's data arguments."""
    from . import data as D

    if args.dataset == "clutter":
        n_train = args.n_train or 4000
        n_val = 500 if args.n_val is None else args.n_val
        n_test = args.n_test or 1000
        common = {"image_size": args.image_size, "num_classes": args.num_classes}
        specs = {"train": {"n": n_train, **common, "seed": args.data_seed},
                 "val": {"n": n_val, **common, "seed": args.data_seed + 1} if n_val > 0 else None,
                 "test": {"n": n_test, **common, "seed": args.data_seed + 2}}
        sets = {k: (_as_dataset(D.make_clutter(**s), k) if s else None) for k, s in specs.items()}
        return {"sets": sets, "generator": "course_pkg.data:make_clutter", "specs": specs,
                "model_kwargs": {"num_classes": args.num_classes, "in_chans": 3, "img_size": args.image_size}}
    if args.dataset == "digits":
        specs = {"train": {"split": "train", "seed": args.data_seed}, "val": None,
                 "test": {"split": "test", "seed": args.data_seed}}
        sets = {k: (_as_dataset(D.load_digits(**s), k) if s else None) for k, s in specs.items()}
        return {"sets": sets, "generator": "course_pkg.data:load_digits", "specs": specs,
                "model_kwargs": {"num_classes": 10, "in_chans": 1, "img_size": 8}}
    specs = {"train": {"root": args.data_root, "train": True}, "val": None,
             "test": {"root": args.data_root, "train": False}}
    train = D.load_cifar10(args.data_root, train=True, download=args.download)
    test = D.load_cifar10(args.data_root, train=False, download=False)
    if args.n_train:
        train = Subset(train, range(min(args.n_train, len(train))))
    if args.n_test:
        test = Subset(test, range(min(args.n_test, len(test))))
    return {"sets": {"train": train, "val": None, "test": test}, "generator": "course_pkg.data:load_cifar10",
            "specs": specs, "model_kwargs": {"num_classes": 10, "in_chans": 3, "img_size": 32}}


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    """Run the command line; returns the run's summary (also stored as the checkpoint's ``meta``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _check_positive(args, "epochs", "batch_size", "n_train", "n_test", "image_size")
    try:
        model_kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as err:
        raise SystemExit(f"--kwargs={args.kwargs!r} is not valid JSON ({err}); use e.g. '{{\"width\": 32}}'") from err
    if not isinstance(model_kwargs, dict):
        raise SystemExit(f"--kwargs={args.kwargs!r} must be a JSON object such as '{{\"width\": 32}}'")
    if args.attention is not None:
        model_kwargs["attention"] = None if args.attention.lower() == "none" else args.attention

    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    device = get_device(args.device)
    started_group = False
    if world_env > 1 and not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        started_group = True
    rank, world = _world()
    say = print if rank == 0 and not args.quiet else (lambda *a, **k: None)
    try:
        data = _load_data(args)
        seed_everything(args.seed)
        model = build_model(args.model, model_kwargs, **data["model_kwargs"])
        if args.sync_bn and world > 1:
            if device.type != "cuda":
                raise SystemExit("--sync-bn needs CUDA devices (SyncBatchNorm does not run on the CPU)")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        num_params = sum(p.numel() for p in model.parameters())
        say(f"{args.model} {model_kwargs} | {num_params:,} parameters | {args.dataset} "
            f"{len(data['sets']['train'])} train images | {world} process(es) on {device.type}")

        def report(r: dict[str, Any]) -> None:
            val = f" val_acc {r['val_acc']:.4f}" if r["val_acc"] is not None else ""
            say(f"epoch {r['epoch']}/{args.epochs} train_loss {r['train_loss']:.4f} "
                f"train_acc {r['train_acc']:.4f}{val} ({r['time_s']:.1f} s)")

        start = time.perf_counter()
        history = fit(model, data["sets"]["train"], data["sets"]["val"], epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
                      device=device, seed=args.seed, amp=args.amp, progress=not args.no_progress,
                      num_workers=args.num_workers, callback=report)
        train_time = time.perf_counter() - start
        if isinstance(model, nn.Module) and args.sync_bn and world > 1:
            model = _revert_sync_bn(model)
        if args.half:  # score the weights exactly as they are stored
            model.load_state_dict({k: v.half() if v.is_floating_point() else v
                                   for k, v in model.state_dict().items()})
        test_acc = evaluate(model, data["sets"]["test"], device=device)
        builder = MODELS.get(args.model, args.model)
        result: dict[str, Any] = {
            "builder": builder,
            "kwargs": {**{k: v for k, v in data["model_kwargs"].items()
                          if k in _accepted(builder, data["model_kwargs"])}, **model_kwargs},
            "dataset": args.dataset,
            "train_data": {"generator": data["generator"], "kwargs": data["specs"]["train"]},
            "val_data": ({"generator": data["generator"], "kwargs": data["specs"]["val"]}
                         if data["specs"]["val"] else None),
            "test_data": {"generator": data["generator"], "kwargs": data["specs"]["test"]},
            "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "weight_decay": args.weight_decay, "amp": args.amp,
            "command": "python -m course_pkg.train " + shlex.join(argv),
            "test_accuracy": test_acc, "num_params": num_params, "train_time_s": round(train_time, 1),
            "world_size": world, "device": device.type, "torch": str(torch.__version__),
            "history": history.records,
        }
        say(f"test accuracy {test_acc:.4f} ({len(data['sets']['test'])} images) | training {train_time:.1f} s")
        if args.out and rank == 0:
            save_checkpoint(args.out, model, result, dtype=torch.float16 if args.half else None)
            say(f"saved {args.out}")
        return result
    finally:
        if started_group:
            dist.destroy_process_group()


def _accepted(builder: str, data_kwargs: Mapping[str, Any]) -> set[str]:
    """Which of ``data_kwargs`` :func:`build_model` passes to ``builder``."""
    params = inspect.signature(resolve_builder(builder)).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {k for k in data_kwargs if k in params or takes_any}


def _revert_sync_bn(module: nn.Module) -> nn.Module:
    """Swap SyncBatchNorm back to BatchNorm2d so the saved model builds without a process group."""
    out = module
    if isinstance(module, nn.SyncBatchNorm):
        out = nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats)
        out.load_state_dict(module.state_dict())
    for name, child in module.named_children():
        out.add_module(name, _revert_sync_bn(child))
    return out


if __name__ == "__main__":
    main()
