"""course_pkg: the companion package of the open course on attention in deep learning.

The chapters of the book import what they run from here. Where each concept lives:

* models, and nothing else (``nn.Module`` classes and their builders): ``attention`` (scaled dot-product
  and multi-head self-attention), ``squeeze_excite`` (SE), ``cbam`` (CBAM), ``resnet`` (ResNets with SE or
  CBAM), ``vit`` (the Vision Transformer), ``cnn`` (a small CNN for tests);
* seeing attention: ``attention_maps`` (``record_attention`` for every model above; rollout and [CLS] maps);
* weights: ``weights`` (conversion from timm, torchvision and the official CBAM code), ``pretrained``
  (pretrained downloads and their preprocessing); checkpoints: ``model_registry`` (models rebuilt by
  builder name), ``checkpoint`` (the file format: save/load), ``checkpoint_manifest`` (the manifest of the
  shipped checkpoints), ``bundled`` (the shipped models and their held-out sets);
* training: ``train`` (``fit``, ``evaluate``, ``History`` and their pieces); command lines: ``cli``;
* data: ``data`` (the labelled data sets: synthetic clutter, digits, CIFAR-10), ``photos`` (sample
  photographs, ImageNet normalisation), ``datasets`` (``Dataset`` views with transforms), ``to_device``
  (the ``.to(device)`` of the data containers); ``examples`` (chapter 1's toy examples);
* pictures: ``plotting`` (shared helpers, attention heatmaps), ``viz`` (channel and spatial maps, the
  pointing game), ``explorer_frames`` (chapter 6's ViT maps of one image and the explorers' PNG frames);
* chapter 6's explorers: ``patch_arithmetic`` (a ViT's token arithmetic: patches, sequence length,
  attention cost), ``widgets`` (the ipywidgets explorers, which re-export what they show from
  ``patch_arithmetic`` and ``explorer_frames``);
* exercises and grading: ``exercises``, ``grading``;
* small shared utilities: ``env`` (device, seeds), ``checks`` (argument checks), ``network`` (the probe
  before a download).
"""

from __future__ import annotations

__version__ = "0.1.0"

import sys  # noqa: E402

from .env import banner, environment, get_device, seed_everything  # noqa: E402

if "IPython" in sys.modules:  # in Jupyter or Colab: figures returned by the helpers show once
    from .plotting import enable_notebook_display

    enable_notebook_display()

__all__ = ["__version__", "banner", "environment", "get_device", "seed_everything"]
