#!/usr/bin/env bash
# Download, here, the wheels that the lent GPU machine lacks for scripts/gpu_check.sh (it runs Python 3.12
# and has torch, timm, pytest, matplotlib, scikit-learn and scikit-image, but no Jupyter stack). They go to
# .whl/ (ignored by git); pass `carry: [".whl"]` to the device run. No dependency resolution happens there,
# so every package nbclient, ipykernel, ipywidgets and nbval need is named here.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
pkgs=(ipykernel ipython ipython_pygments_lexers ipywidgets comm widgetsnbextension jupyterlab_widgets
      jupyter_client jupyter_core traitlets tornado pyzmq nbclient nbformat fastjsonschema jsonschema
      jsonschema-specifications referencing rpds-py nbval matplotlib-inline nest-asyncio2 platformdirs
      decorator jedi parso prompt_toolkit wcwidth pexpect ptyprocess stack_data asttokens executing
      pure_eval debugpy)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64 \
  --platform any -d .whl "${pkgs[@]}"
du -sh .whl
