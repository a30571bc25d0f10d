"""Training: ``fit`` (a small, readable, resumable loop) and ``evaluate``; this is the public API.

``fit`` trains any classifier on a ``Dataset`` (or ``(images, labels)`` tensors) with AdamW, a cosine
learning-rate schedule, a ``tqdm`` progress bar, mixed precision on CUDA and a per-epoch
:class:`~course_pkg.train.history.History`. It runs unchanged under ``torchrun``: when a process group is
initialised it wraps the model in DistributedDataParallel and gives each process its shard of every
global batch. Its pieces can be tested one by one, each in its own module:

* :mod:`~course_pkg.train.fitting`: ``fit`` itself (argument checks, set-up, the run over epochs);
* :mod:`~course_pkg.train.loop`: one epoch (training steps, validation, the record), the shuffled batches;
* :mod:`~course_pkg.train.step`: ``train_step`` (one optimiser step, with gradient clipping);
* :mod:`~course_pkg.train.optim`: ``param_groups`` (no weight decay for biases, norms and what
  ``model.no_weight_decay()`` names), ``cosine_schedule``, the optimiser set-up;
* :mod:`~course_pkg.train.state`: the resumable training state (``save_state`` / ``resume_state``);
* :mod:`~course_pkg.train.evaluation`: ``evaluate``; :mod:`~course_pkg.train.history`: ``History``;
* :mod:`~course_pkg.train.stop` (Ctrl-C), :mod:`~course_pkg.train.distributed` (the process group),
  :mod:`~course_pkg.train.precision` (mixed precision), :mod:`~course_pkg.train.inputs` (data, device,
  labels).

``python -m course_pkg.train`` runs the command line, :mod:`course_pkg.cli.train` (see ``__main__``).
"""

from __future__ import annotations

from .evaluation import evaluate
from .fitting import fit

__all__ = ["evaluate", "fit"]
