"""Interactive explorers for chapter 6: what the patch size and the number of heads change in a ViT.

Two explorers, each an ``ipywidgets`` control plus the pictures it selects:

* :class:`PatchSizeExplorer`: a slider over the patch sizes that divide the image. For each one it shows
  the image cut into its patch grid, the token arithmetic (:func:`patch_numbers`: patches, flattened patch
  length, sequence length with [CLS], attention-matrix size, attention cost relative to 16 x 16 patches)
  and, where a model was trained at that patch size, its test accuracy and its attention rollout.
* :class:`HeadCountExplorer`: a slider over the number of heads (one trained model per count) and a head
  selector; it shows each head's attention on a sample image and the per-head width ``embed_dim / heads``.

**They work without a kernel.** Every state is rendered up front as a PNG in an ``ipywidgets.Image``; the
states sit in an ``ipywidgets.Stack`` and the control's ``index`` is tied to the stack's ``selected_index``
with :func:`ipywidgets.jslink`. The link runs in the browser and is saved with the widget state, so on the
published book page (a static HTML file, no Python behind it) moving a slider still flips the picture. In
Jupyter or Colab a Python callback (``observe``) also keeps the stack in step and records the current
numbers in :attr:`PatchSizeExplorer.current`, which is what the tests check headless.

This module holds only the widgets. The token arithmetic lives in :mod:`course_pkg.patch_arithmetic`
(:func:`patch_numbers`, :func:`patch_size_options`), the maps from a model and the PNG frames in
:mod:`course_pkg.explorer_frames` (:func:`rollout_map`, :func:`cls_attention_maps`, the frame renderers);
both are re-exported here, so ``from course_pkg.widgets import patch_numbers`` keeps working. The explorers
take precomputed maps, so they run without a model; :meth:`PatchSizeExplorer.from_models` and
:meth:`HeadCountExplorer.from_models` compute the maps from trained ViTs, and the ``from_bundled``
constructors load the models shipped with the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .explorer_frames import (
    ImageLike,
    cls_attention_maps,
    figure_to_png,
    render_head_frame,
    render_patch_frame,
    rollout_map,
    to_display_image,
)
from .patch_arithmetic import PatchNumbers, _typed_int, patch_numbers, patch_size_options

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets

__all__ = [
    "HeadCountExplorer",
    "PatchNumbers",
    "PatchSizeExplorer",
    "cls_attention_maps",
    "figure_to_png",
    "patch_numbers",
    "patch_size_options",
    "render_head_frame",
    "render_patch_frame",
    "rollout_map",
    "to_display_image",
]


def _check_accuracies(accuracies: Any, key: str) -> dict[Any, float]:
    """``{key: accuracy}`` with every accuracy a fraction in [0, 1] (81 or 91.5 are percentages: refused)."""
    if accuracies is None:
        return {}
    if not isinstance(accuracies, Mapping):
        raise TypeError(f"accuracies must be a dict {{{key}: accuracy in [0, 1]}}, got a {type(accuracies).__name__}")
    for k, a in accuracies.items():
        if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)):
            raise TypeError(f"accuracies[{k!r}]={a!r} is a {type(a).__name__}; use a number in [0, 1]")
        if not 0 <= a <= 1:
            hint = f" (it looks like a percentage: use {a / 100:g})" if 1 < a <= 100 else ""
            raise ValueError(f"accuracies[{k!r}]={a!r} is not valid; use a fraction in [0, 1]{hint}")
    return dict(accuracies)


def _widgets() -> Any:
    import ipywidgets

    return ipywidgets


def _image_widget(png: bytes) -> ipywidgets.Image:
    """An Image widget shown at the PNG's own size (never stretched by its neighbours), that shrinks on a narrow
    screen only down to the width where its smallest text is still 9 px (``figure_text.readable_width``);
    below that its page (:func:`_page`) scrolls sideways.

    Its alt text comes from the book's page script (``book/_static/course.js``), by explorer: a ``tooltip``
    on the widget would say it too, but the published pages' widget embedder then fails to draw the image.
    """
    from .figure_text import png_width, readable_width

    return _widgets().Image(value=png, format="png",
                            layout={"width": f"{png_width(png)}px", "max_width": "100%",
                                    "min_width": f"{readable_width(png)}px", "height": "auto"})


def _page(*children: Any) -> ipywidgets.VBox:
    """One page of a stack: its children stacked, left-aligned at their natural widths; it scrolls sideways
    where a frame is wider than the screen."""
    return _widgets().VBox(list(children), layout={"align_items": "flex-start", "overflow": "auto"})


class _Explorer:
    """Shared display plumbing: an explorer shows as its top-level widget."""

    widget: ipywidgets.Widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _bundled_models(prefix: str, key: str) -> tuple[dict[int, Any], dict[int, float]]:
    """The bundled models whose name starts with ``prefix``, keyed by their ``kwargs[key]`` (e.g. the patch
    size), and their recorded test accuracies: ``({value: model}, {value: accuracy})``, sorted by value."""
    from .bundled import load_bundled
    from .checkpoint_manifest import manifest

    found: dict[int, tuple[str, float]] = {}
    for entry in manifest():
        name = entry["name"]
        if name.startswith(prefix) and key in entry.get("kwargs", {}):
            found[int(entry["kwargs"][key])] = (name, float(entry.get("test_accuracy", float("nan"))))
    if not found:
        raise ValueError(f"no bundled model is named {prefix}* with a {key!r} argument; see "
                         "course_pkg.checkpoint_manifest.list_bundled()")
    found = dict(sorted(found.items()))
    models = {v: load_bundled(name, device="cpu") for v, (name, _) in found.items()}
    return models, {v: acc for v, (_, acc) in found.items()}


class PatchSizeExplorer(_Explorer):
    """A slider over patch sizes: the patch grid, the token arithmetic, and each model's rollout.

    Args:
        image: the image to cut (``(C, H, W)`` tensor or array; square).
        patch_sizes: the slider's options (default: every divisor of the image side from 2 up to half of it).
        rollouts: ``{patch_size: (g, g) rollout map}`` of models trained at that patch size (optional).
        accuracies: ``{patch_size: test accuracy in [0, 1]}`` of those models (optional).
        predictions: ``{patch_size: caption}`` with e.g. the model's prediction on this image (optional).
        mask: ``(H, W)`` boolean object mask outlined on the rollout (optional).
        reference_patch: the patch size the attention cost is compared with (16).
        initial: the patch size shown first (default: the reference if present, else the first option).

    Attributes:
        slider: the ``SelectionSlider`` (its ``index`` drives the stack).
        stack: the ``Stack`` of pages, one per patch size.
        widget: the whole explorer (display it, or make the explorer the last expression of a cell).
        numbers: ``{patch_size: PatchNumbers}``; frames: ``{patch_size: PNG bytes}``.
        current: the :class:`PatchNumbers` of the selected patch size (updated by the Python callback).
    """

    def __init__(self, image: ImageLike, patch_sizes: Optional[Sequence[int]] = None,
                 rollouts: Optional[Mapping[int, np.ndarray]] = None,
                 accuracies: Optional[Mapping[int, float]] = None,
                 predictions: Optional[Mapping[int, str]] = None, mask: Optional[np.ndarray] = None,
                 reference_patch: int = 16, initial: Optional[int] = None) -> None:
        w = _widgets()
        img = to_display_image(image)
        h, wd = img.shape[:2]
        if h != wd:
            raise ValueError(f"the image must be square, got {h}x{wd} pixels")
        in_chans = 3 if img.ndim == 3 else 1
        if patch_sizes is None:
            patch_sizes = patch_size_options(h, min_size=2, max_size=max(2, h // 2))
        if isinstance(patch_sizes, (str, bytes)) or not isinstance(patch_sizes, (Sequence, set, frozenset)):
            example = f"[{patch_sizes}]" if isinstance(patch_sizes, int) else "[8, 16]"
            raise TypeError(f"patch_sizes={patch_sizes!r} is a {type(patch_sizes).__name__}; use a list of ints "
                            f"such as {example}")
        if len(patch_sizes) == 0:
            raise ValueError(f"patch_sizes={list(patch_sizes)!r} is empty; give at least one patch size, e.g. "
                             f"{patch_size_options(h)}")
        patch_sizes = sorted({_typed_int(f"patch_sizes[{i}]", p) for i, p in enumerate(patch_sizes)})
        bad = [p for p in patch_sizes if h % p]
        if bad:
            raise ValueError(f"patch_sizes {bad} do not divide the image side {h}; use divisors such as "
                             f"{patch_size_options(h)}")
        rollouts, predictions = dict(rollouts or {}), dict(predictions or {})
        accuracies = _check_accuracies(accuracies, "patch_size")
        if mask is not None:
            mask_shape = tuple(np.shape(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask))
            if mask_shape != (h, wd):
                raise ValueError(f"mask has shape {mask_shape}; use the image's object mask of shape ({h}, {wd})")
        extra = sorted(set(rollouts) - set(patch_sizes))
        if extra:
            raise ValueError(f"rollouts are given for patch sizes {extra} that are not slider options {patch_sizes}")
        ref = reference_patch if h % reference_patch == 0 else patch_sizes[-1]
        self.patch_sizes: list[int] = patch_sizes
        self.numbers = {p: patch_numbers(h, p, in_chans, ref) for p in patch_sizes}
        self.frames: dict[int, bytes] = {}
        self.captions: dict[int, str] = {}
        pages = []
        for p in patch_sizes:
            cap = ""
            if p in accuracies:
                cap = f"test accuracy {100 * accuracies[p]:.1f}%"
            if p in predictions:
                cap = f"{cap}; {predictions[p]}" if cap else predictions[p]
            self.captions[p] = cap
            self.frames[p] = render_patch_frame(img, self.numbers[p], rollouts.get(p), cap, mask)
            model_line = (f"<p style='margin:2px 0'>model trained with {p}&times;{p} patches: <b>{cap}</b></p>"
                          if p in rollouts else
                          "<p style='margin:2px 0;color:#777'>no trained model at this patch size</p>")
            pages.append(_page(_image_widget(self.frames[p]), w.HTML(self.numbers[p].to_html() + model_line)))
        start = initial if initial is not None else (ref if ref in patch_sizes else patch_sizes[0])
        if start not in patch_sizes:
            raise ValueError(f"initial={start} is not one of the patch sizes {patch_sizes}")
        self.slider = w.SelectionSlider(options=[(f"{p}\u00d7{p}", p) for p in patch_sizes], value=start,
                                        description="patch size", continuous_update=True,
                                        style={"description_width": "initial"}, layout={"width": "420px", "max_width": "100%"})
        self.stack = w.Stack(pages, selected_index=patch_sizes.index(start))
        self.link = w.jslink((self.slider, "index"), (self.stack, "selected_index"))  # works with no kernel
        self.current: PatchNumbers = self.numbers[start]
        self.slider.observe(self._on_index, names="index")
        title = w.HTML(f"<b>Patch size explorer</b> &mdash; a {h}&times;{h} image; move the slider")
        self.widget = w.VBox([title, self.slider, self.stack])
        self.widget.add_class("course-patch-explorer")

    def _on_index(self, change: Mapping[str, Any]) -> None:
        """The Python side of the slider (Jupyter, Colab): select the page and record its numbers."""
        i = change["new"]
        if i is None:
            return
        self.stack.selected_index = i
        self.current = self.numbers[self.patch_sizes[i]]

    @property
    def shown_frame(self) -> bytes:
        """The PNG of the page the stack shows now."""
        return self.frames[self.patch_sizes[self.stack.selected_index]]

    @classmethod
    def from_models(cls, image: torch.Tensor, models: Mapping[int, torch.nn.Module],
                    accuracies: Optional[Mapping[int, float]] = None,
                    class_names: Optional[Sequence[str]] = None, label: Optional[int] = None,
                    **kwargs: Any) -> PatchSizeExplorer:
        """Compute each model's rollout on ``image`` (``(C, H, W)``, the models' input) and build the explorer.

        Args:
            models: ``{patch_size: ViT}``.
            accuracies: ``{patch_size: test accuracy}``.
            class_names, label: to caption each model's prediction (and whether it is right).
            kwargs: passed on to the constructor (``patch_sizes``, ``mask``, ...).
        """
        rollouts, predictions = {}, {}
        for p, model in models.items():
            rollouts[p], pred = rollout_map(model, image)
            predictions[p] = _prediction_text(pred, class_names, label)
        return cls(image, rollouts=rollouts, accuracies=accuracies, predictions=predictions, **kwargs)

    @classmethod
    def from_bundled(cls, image: torch.Tensor, prefix: str = "clutter_vit_p", **kwargs: Any) -> PatchSizeExplorer:
        """Use the bundled models ``{prefix}{patch}`` (patch size read from each manifest entry's kwargs)."""
        models, accuracies = _bundled_models(prefix, "patch_size")
        return cls.from_models(image, models, accuracies, **kwargs)


def _prediction_text(pred: int, class_names: Optional[Sequence[str]], label: Optional[int]) -> str:
    name = class_names[pred] if class_names is not None and 0 <= pred < len(class_names) else str(pred)
    if label is None:
        return f"predicts {name}"
    return f"predicts {name} ({'right' if pred == label else 'wrong'})"


class HeadCountExplorer(_Explorer):
    """A slider over the number of heads and a head selector: what each head attends to.

    One page per head count; each page holds its own head selector (``ToggleButtons``: "all", "0", "1", ...)
    tied to its own inner ``Stack`` of frames, so both controls work on a static page (a stack of
    stacks, all links client-side).

    Args:
        image: the sample image.
        head_maps: ``{num_heads: (H, g, g) maps}`` (from :func:`cls_attention_maps`).
        embed_dim: the models' token width ``D`` (one int, or ``{num_heads: D}``).
        accuracies: ``{num_heads: test accuracy}`` (optional).
        predictions: ``{num_heads: caption}`` (optional).
        initial: the head count shown first (default: the second option if any, else the first).

    Attributes:
        slider: the head-count ``SelectionSlider``; stack: the outer ``Stack``.
        selectors: ``{num_heads: ToggleButtons}``; inner: ``{num_heads: Stack}``.
        frames: ``{num_heads: [PNG of "all heads", PNG of head 0, head 1, ...]}``.
        head_dims: ``{num_heads: embed_dim // num_heads}``.
    """

    def __init__(self, image: ImageLike, head_maps: Mapping[int, np.ndarray], embed_dim: Union[int, Mapping[int, int]],
                 accuracies: Optional[Mapping[int, float]] = None,
                 predictions: Optional[Mapping[int, str]] = None, initial: Optional[int] = None) -> None:
        w = _widgets()
        if not head_maps:
            raise ValueError("head_maps is empty; give at least one {num_heads: (H, g, g) maps} entry")
        accuracies, predictions = _check_accuracies(accuracies, "num_heads"), dict(predictions or {})
        dims = embed_dim.values() if isinstance(embed_dim, Mapping) else [embed_dim]
        for d in dims:
            _typed_int("embed_dim", d)
        self.head_counts: list[int] = sorted(head_maps)
        self.head_dims: dict[int, int] = {}
        self.frames: dict[int, list[bytes]] = {}
        self.selectors: dict[int, Any] = {}
        self.inner: dict[int, Any] = {}
        self.links: list[Any] = []
        pages = []
        for n in self.head_counts:
            maps = np.asarray(head_maps[n])
            if maps.ndim != 3 or maps.shape[0] != n:
                raise ValueError(f"head_maps[{n}] has shape {maps.shape}; expected ({n}, g, g), one map per head")
            d = embed_dim[n] if isinstance(embed_dim, Mapping) else embed_dim
            if d % n:
                raise ValueError(f"embed_dim={d} is not divisible by num_heads={n}")
            self.head_dims[n] = d // n
            cap = f"{n} head{'s' if n > 1 else ''} of {d // n} dims"
            if n in accuracies:
                cap += f", test accuracy {100 * accuracies[n]:.1f}%"
            if n in predictions:
                cap += f", {predictions[n]}"
            frames = [render_head_frame(image, maps, None, cap)]
            frames += [render_head_frame(image, maps, h, cap) for h in range(n)]
            self.frames[n] = frames
            selector = w.ToggleButtons(options=["all"] + [str(h) for h in range(n)], index=0, description="head",
                                       tooltips=["every head side by side"] + [f"head {h} alone" for h in range(n)],
                                       style={"button_width": "44px", "description_width": "initial"})
            selector.add_class(f"course-head-selector-{n}")
            inner = w.Stack([_image_widget(f) for f in frames], selected_index=0)
            self.links.append(w.jslink((selector, "index"), (inner, "selected_index")))
            selector.observe(self._on_head, names="index")
            self.selectors[n], self.inner[n] = selector, inner
            info = w.HTML(f"<p style='margin:2px 0'>embed_dim D = {d} split into H = {n} head{'s' if n > 1 else ''}"
                          f" &rarr; each head works in D / H = <b>{d // n}</b> dimensions"
                          + (f"<br>test accuracy of this model: <b>{100 * accuracies[n]:.1f}%</b>"
                             if n in accuracies else "") + "</p>")
            pages.append(_page(info, selector, inner))
        start = initial if initial is not None else self.head_counts[min(1, len(self.head_counts) - 1)]
        if start not in self.head_counts:
            raise ValueError(f"initial={start} is not one of the head counts {self.head_counts}")
        self.slider = w.SelectionSlider(options=[(str(n), n) for n in self.head_counts], value=start,
                                        description="number of heads", style={"description_width": "initial"},
                                        layout={"width": "420px", "max_width": "100%"})
        self.stack = w.Stack(pages, selected_index=self.head_counts.index(start))
        self.link = w.jslink((self.slider, "index"), (self.stack, "selected_index"))
        self.slider.observe(self._on_count, names="index")
        title = w.HTML("<b>Head explorer</b> &mdash; [CLS] attention of the last layer, one map per head")
        self.widget = w.VBox([title, self.slider, self.stack])
        self.widget.add_class("course-head-explorer")

    def _on_count(self, change: Mapping[str, Any]) -> None:
        if change["new"] is not None:
            self.stack.selected_index = change["new"]

    def _on_head(self, change: Mapping[str, Any]) -> None:
        owner = change["owner"]
        for n, sel in self.selectors.items():
            if sel is owner and change["new"] is not None:
                self.inner[n].selected_index = change["new"]

    @property
    def num_heads(self) -> int:
        """The head count selected now."""
        return self.head_counts[self.stack.selected_index]

    @property
    def shown_frame(self) -> bytes:
        """The PNG shown now (selected head count, selected head)."""
        n = self.num_heads
        return self.frames[n][self.inner[n].selected_index]

    @classmethod
    def from_models(cls, image: torch.Tensor, models: Mapping[int, torch.nn.Module],
                    accuracies: Optional[Mapping[int, float]] = None, layer: int = -1,
                    class_names: Optional[Sequence[str]] = None, label: Optional[int] = None,
                    **kwargs: Any) -> HeadCountExplorer:
        """Compute each model's per-head [CLS] maps on ``image`` and build the explorer.

        Args:
            models: ``{num_heads: ViT}``; each model's ``embed_dim`` attribute (or its ``cls_token`` width)
                gives ``D``.
        """
        head_maps, dims, predictions = {}, {}, {}
        for n, model in models.items():
            head_maps[n], pred = cls_attention_maps(model, image, layer)
            dims[n] = int(getattr(model, "embed_dim", 0) or model.cls_token.shape[-1])
            predictions[n] = _prediction_text(pred, class_names, label)
        return cls(image, head_maps, dims, accuracies, predictions, **kwargs)

    @classmethod
    def from_bundled(cls, image: torch.Tensor, prefix: str = "clutter_vit_h", **kwargs: Any) -> HeadCountExplorer:
        """Use the bundled models ``{prefix}{heads}`` (head count read from each manifest entry's kwargs)."""
        models, accuracies = _bundled_models(prefix, "num_heads")
        return cls.from_models(image, models, accuracies, **kwargs)



# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
