"""The per-epoch record of a :func:`course_pkg.train.fit` run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["History"]


class History:
    """The per-epoch record of a :func:`course_pkg.train.fit` run.

    ``history.records`` is a list of dicts (``epoch, train_loss, train_acc, val_loss, val_acc, lr,
    time_s``); ``history["val_acc"]`` is one key over all epochs; ``history.last`` the final epoch.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        #: True when the run was stopped early (Ctrl-C / KeyboardInterrupt); ``records`` then holds the
        #: finished epochs only.
        self.interrupted: bool = False

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


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from ..checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
