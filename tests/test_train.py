"""course_pkg.train: the training loop, evaluation, checkpoints and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from course_pkg.checkpoint import load_checkpoint, save_checkpoint
from course_pkg.cli.train import main
from course_pkg.cnn import simple_cnn
from course_pkg.data import load_digits, make_clutter
from course_pkg.datasets import ImageDataset
from course_pkg.model_registry import MODELS, build_model, resolve_builder
from course_pkg.train import evaluate, fit
from course_pkg.train.history import History

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits() -> tuple:
    return load_digits("train"), load_digits("test")


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_learns_digits_and_records_history(digits: tuple, capsys: pytest.CaptureFixture) -> None:
    train, test = digits
    torch.manual_seed(0)
    model = simple_cnn(num_classes=10, in_chans=1, width=8)
    seen: list[int] = []
    history = fit(model, train, test, epochs=3, batch_size=64, lr=1e-2, device="cpu", seed=0, progress=False,
                  callback=lambda r: seen.append(r["epoch"]))
    assert isinstance(history, History) and len(history) == 3 and seen == [1, 2, 3]
    assert set(history.last) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time_s"}
    losses = history["train_loss"]
    assert losses[-1] < losses[0] * 0.7, f"the training loss should fall, got {losses}"
    assert history["val_acc"][-1] > 0.6
    assert history["lr"][0] == pytest.approx(1e-2) and history["lr"][-1] < 1e-2   # cosine schedule
    assert evaluate(model, test) == pytest.approx(history["val_acc"][-1])
    assert not model.training
    assert capsys.readouterr().err == "", "progress=False prints nothing"
    with pytest.raises(KeyError, match="history has no 'accuracy'"):
        history["accuracy"]


def test_progress_bar_shows_when_asked(digits: tuple, capsys: pytest.CaptureFixture) -> None:
    train, _ = digits
    fit(simple_cnn(10, 1, 4), (train.images[:64], train.labels[:64]), epochs=1, batch_size=32, device="cpu",
        progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "2/2" in err


def test_fit_repeats_with_the_same_seed(digits: tuple) -> None:
    train, _ = digits
    small = (train.images[:256], train.labels[:256])
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = simple_cnn(10, 1, 4)
        fit(model, small, epochs=2, batch_size=32, device="cpu", seed=3, progress=False)
        runs.append(_weights(model))
    torch.manual_seed(1)
    other = simple_cnn(10, 1, 4)
    fit(other, small, epochs=2, batch_size=32, device="cpu", seed=4, progress=False)   # another order
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k
    assert any(not torch.equal(runs[0][k], v) for k, v in _weights(other).items())


def test_fit_accepts_datasets_and_clutter_sets() -> None:
    data = make_clutter(32, image_size=24, num_classes=3, seed=0)
    model = simple_cnn(3, 3, 4)
    h1 = fit(model, data, epochs=1, batch_size=16, device="cpu", progress=False)
    h2 = fit(model, ImageDataset(data.images, data.labels, transform=lambda x: x.flip(-1)), data, epochs=1,
             batch_size=16, device="cpu", progress=False)
    assert h1.last["val_acc"] is None and h2.last["val_acc"] is not None


def test_bf16_autocast_on_cpu(digits: tuple) -> None:
    train, _ = digits
    model = simple_cnn(10, 1, 4)
    h = fit(model, (train.images[:64], train.labels[:64]), epochs=1, batch_size=32, device="cpu",
            amp="bf16", progress=False)
    assert torch.isfinite(torch.tensor(h.last["train_loss"]))
    assert next(model.parameters()).dtype == torch.float32, "autocast keeps the weights in fp32"


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["auto", "fp16", "bf16"])
def test_mixed_precision_on_cuda(digits: tuple, amp: str) -> None:
    train, test = digits
    torch.manual_seed(0)
    model = simple_cnn(10, 1, 8)
    h = fit(model, train, test, epochs=2, batch_size=64, lr=1e-2, device="cuda", amp=amp, progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert h["train_loss"][-1] < h["train_loss"][0] and h.last["val_acc"] > 0.5


@pytest.mark.parametrize("kwargs, error, match", [
    ({"epochs": 0}, ValueError, "epochs=0"),
    ({"batch_size": 0}, ValueError, "batch_size=0"),
    ({"lr": -1.0}, ValueError, "lr=-1.0"),
    ({"lr": 0.0}, ValueError, "lr=0"),
    ({"weight_decay": float("nan")}, ValueError, "weight_decay=nan"),
    ({"label_smoothing": 1.0}, ValueError, "label_smoothing=1.0"),
    ({"grad_clip": -1.0}, ValueError, "grad_clip=-1.0"),
    ({"amp": "fp8"}, ValueError, "amp='fp8'.*auto"),
    ({"amp": "fp16"}, ValueError, "amp='fp16' needs a CUDA device"),
    ({"seed": -2}, ValueError, "seed=-2"),
])
def test_fit_bad_arguments_name_the_parameter(kwargs: dict, error: type, match: str) -> None:
    data = (torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,)))
    with pytest.raises(error, match=match):
        fit(simple_cnn(10, 1, 4), data, **{"device": "cpu", "progress": False, **kwargs})


def test_fit_bad_data_is_explained() -> None:
    with pytest.raises(TypeError, match="train_data must be a torch Dataset.*got ndarray"):
        import numpy as np
        fit(simple_cnn(10, 1, 4), np.zeros((4, 1, 8, 8)), device="cpu", progress=False)
    with pytest.raises(ValueError, match="train_data is empty"):
        fit(simple_cnn(10, 1, 4), (torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)), device="cpu")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit("resnet", (torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)), device="cpu")
    with pytest.raises(ValueError, match="batch_size=64 with drop_last=True leaves no batch"):
        fit(simple_cnn(10, 1, 4), (torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)), device="cpu",
            batch_size=64, drop_last=True, progress=False)


def test_evaluate_counts_correct_predictions() -> None:
    class AlwaysZero(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 3)

    labels = torch.tensor([0, 1, 0, 2, 0, 0, 1, 2, 0, 1])
    model = AlwaysZero().train()
    assert evaluate(model, (torch.zeros(10, 1, 2, 2), labels), batch_size=3) == pytest.approx(0.5)
    assert model.training, "evaluate puts the model back in its mode"
    with pytest.raises(ValueError, match="data is empty"):
        evaluate(model, (torch.zeros(0, 1, 2, 2), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="batch_size=0"):
        evaluate(model, (torch.zeros(2, 1, 2, 2), labels[:2]), batch_size=0)


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = simple_cnn(6, 3, 8).eval()
    meta = {"builder": "course_pkg.cnn:simple_cnn", "kwargs": {"num_classes": 6}, "acc": 0.5,
            "history": [{"epoch": 1, "val_acc": None}], "ok": True}
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, meta)
    fresh = simple_cnn(6, 3, 8).eval()
    ckpt = load_checkpoint(path, fresh)
    assert ckpt.meta == meta
    x = torch.rand(2, 3, 24, 24)
    assert torch.equal(fresh(x), model(x))
    # stored as float16: half the bytes, loads into a float32 model
    half = save_checkpoint(tmp_path / "h.pt", model, meta, dtype=torch.float16)
    state = load_checkpoint(half).state_dict
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert half.stat().st_size < 0.6 * path.stat().st_size
    other = simple_cnn(6, 3, 8).eval()
    load_checkpoint(half, other)
    assert torch.allclose(other(x), model(x), atol=1e-2)
    # a bare state dict loads too
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt").meta == {}


def test_checkpoints_load_with_weights_only(tmp_path: Path) -> None:
    """A file that holds an arbitrary object (code on unpickling) is refused."""
    torch.save({"state_dict": {}, "meta": {}, "payload": History()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refusing to load.*weights_only=True"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match=r"meta\['when'\] is a datetime"):
        import datetime
        save_checkpoint(tmp_path / "x.pt", simple_cnn(2, 1, 2), {"when": datetime.datetime.now()})
    with pytest.raises(TypeError, match="non-string key 1"):
        save_checkpoint(tmp_path / "x.pt", simple_cnn(2, 1, 2), {1: "a"})
    with pytest.raises(ValueError, match="dtype=torch.int8"):
        save_checkpoint(tmp_path / "x.pt", simple_cnn(2, 1, 2), dtype=torch.int8)


# ------------------------------------------------------------------------------------------------
# builders and the command line
# ------------------------------------------------------------------------------------------------


def test_builders_by_name_and_by_path() -> None:
    assert resolve_builder("simple_cnn") is simple_cnn
    assert resolve_builder("course_pkg.cnn:simple_cnn") is simple_cnn
    assert set(MODELS) >= {"resnet_small", "simple_cnn", "vit"}
    m = build_model("resnet_small", {"attention": "se"}, num_classes=4, in_chans=1, img_size=32)
    assert m(torch.rand(2, 1, 32, 32)).shape == (2, 4)         # img_size is not passed: resnet_small lacks it
    v = build_model("vit", {"patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2}, num_classes=3,
                    in_chans=1, img_size=8)
    assert v(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError, match="model='resnet9000' is not known"):
        resolve_builder("resnet9000")
    with pytest.raises(ValueError, match="cannot import module 'no_such_pkg'"):
        resolve_builder("no_such_pkg:f")
    with pytest.raises(ValueError, match="has no callable 'nothing'"):
        resolve_builder("course_pkg.train:nothing")


def test_cli_trains_saves_and_records_its_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "digits.pt"
    argv = ["--model", "simple_cnn", "--kwargs", '{"width": 8}', "--dataset", "digits", "--epochs", "2",
            "--batch-size", "64", "--lr", "0.01", "--device", "cpu", "--no-progress", "--out", str(out)]
    result = main(argv)
    printed = capsys.readouterr().out
    assert "epoch 2/2" in printed and "test accuracy" in printed and "saved" in printed
    assert result["command"].startswith("python -m course_pkg.train --model simple_cnn")
    assert result["kwargs"] == {"num_classes": 10, "in_chans": 1, "width": 8}
    assert result["test_data"] == {"generator": "course_pkg.data:load_digits",
                                   "kwargs": {"split": "test", "seed": 0}}
    assert result["test_accuracy"] > 0.5 and len(result["history"]) == 2
    model = build_model(result["builder"], result["kwargs"])
    ckpt = load_checkpoint(out, model)
    assert ckpt.meta["test_accuracy"] == result["test_accuracy"]
    assert evaluate(model, load_digits("test")) == result["test_accuracy"]


def test_cli_clutter_with_attention_and_half_weights(tmp_path: Path) -> None:
    out = tmp_path / "cbam.pt"
    result = main(["--model", "resnet_small", "--attention", "cbam", "--dataset", "clutter", "--n-train", "32",
                   "--n-val", "16", "--n-test", "16", "--image-size", "24", "--num-classes", "3", "--epochs", "1",
                   "--batch-size", "16", "--device", "cpu", "--no-progress", "--quiet", "--half", "--out", str(out)])
    assert result["kwargs"]["attention"] == "cbam" and result["kwargs"]["num_classes"] == 3
    assert result["test_data"]["kwargs"] == {"n": 16, "image_size": 24, "num_classes": 3, "seed": 2}
    model = build_model(result["builder"], result["kwargs"])
    load_checkpoint(out, model)
    assert evaluate(model, make_clutter(**result["test_data"]["kwargs"])) == result["test_accuracy"]


@pytest.mark.parametrize("argv, match", [
    (["--kwargs", "{width: 8}"], "--kwargs=.*is not valid JSON"),
    (["--kwargs", "[1]"], "must be a JSON object"),
    (["--epochs", "0"], "--epochs=0 is not valid"),
    (["--batch-size", "-4"], "--batch-size=-4 is not valid"),
])
def test_cli_bad_arguments(argv: list, match: str) -> None:
    with pytest.raises(SystemExit, match=match):
        main(argv + ["--device", "cpu"])


def test_cli_help_runs_as_a_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "course_pkg.train", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "--batch-size" in proc.stdout and "--attention" in proc.stdout


def test_sync_batchnorm_round_trip() -> None:
    from course_pkg.cli.train import _revert_sync_bn

    model = build_model("resnet_small", num_classes=3)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
    back = _revert_sync_bn(synced)
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in back.modules())
    assert set(back.state_dict()) == set(build_model("resnet_small", num_classes=3).state_dict())


# ------------------------------------------------------------------------------------------------
# The pieces of fit, each on its own, and their effect inside fit
# ------------------------------------------------------------------------------------------------
def _tiny_vit() -> nn.Module:
    from course_pkg.vit import VisionTransformer

    return VisionTransformer(img_size=8, patch_size=4, num_classes=3, embed_dim=8, depth=1, num_heads=2)


def _tiny_data(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_param_groups_exempt_biases_norms_and_no_weight_decay_names() -> None:
    from course_pkg.train.optim import param_groups

    model = _tiny_vit()
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {"pos_embed", "cls_token", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias", "norm.bias",
            "head.bias"} <= set(no_decay["names"])
    assert set(decay["names"]) == {n for n, p in model.named_parameters() if p.dim() >= 2} - {"pos_embed",
                                                                                              "cls_token"}
    model.head.weight.requires_grad_(False)
    assert "head.weight" not in param_groups(model, 0.05)[0]["names"]


def test_fit_decays_weight_matrices_only() -> None:
    """With a huge weight decay, matrices shrink; biases, norms, pos_embed and cls_token set to 1 stay near 1."""
    torch.manual_seed(0)
    model = _tiny_vit()
    exempt = {n for n, p in model.named_parameters() if p.dim() < 2} | {"pos_embed", "cls_token"}
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    fit(model, _tiny_data(), epochs=1, batch_size=4, lr=1e-2, weight_decay=50.0, device="cpu",
        progress=False, amp="off")
    after = dict(model.named_parameters())
    # Adam alone moves a parameter by at most ~lr per step (3 steps: < 0.05); the decay multiplies it by
    # (1 - lr * 50 * schedule) each step: 0.5 * 0.625 * 0.875 = 0.27 in all.
    for n, p in after.items():
        if n in exempt:
            assert (p - 1.0).abs().max() < 0.05, f"{n} was decayed"
        else:
            assert p.abs().max() < 0.35, f"{n} was not decayed"


def test_cosine_schedule_warms_up_then_decays_to_zero() -> None:
    from course_pkg.train.optim import cosine_schedule

    f = cosine_schedule(10, warmup_steps=2)
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == 1.0 and abs(f(6) - 0.5) < 1e-12 and abs(f(10)) < 1e-12
    assert all(f(s) >= f(s + 1) for s in range(2, 10))
    assert cosine_schedule(4)(0) == 1.0
    with pytest.raises(ValueError, match="warmup_steps=-1"):
        cosine_schedule(4, -1)


def test_fit_follows_the_schedule_epoch_by_epoch() -> None:
    torch.manual_seed(0)
    history = fit(_tiny_vit(), _tiny_data(), epochs=4, batch_size=6, lr=1.0e-3, weight_decay=0.0,
                  device="cpu", progress=False, amp="off")
    from course_pkg.train.optim import cosine_schedule

    f = cosine_schedule(8)
    assert history["lr"] == pytest.approx([1e-3 * f(2 * e) for e in range(4)], rel=1e-9)


class _Logged(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.x, self.y = _tiny_data(n)
        self.seen: list[int] = []

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        self.seen.append(int(i))
        return self.x[i], self.y[i]


def test_fit_shuffles_each_epoch_differently_and_reproducibly() -> None:
    """The sampler's epoch is set every epoch: order e is randperm(n) from seed + e, as DistributedSampler
    draws it. Without set_epoch every epoch would repeat the first order."""
    data = _Logged(12)
    fit(_tiny_vit(), data, epochs=3, batch_size=12, seed=5, device="cpu", progress=False, amp="off")
    orders = [data.seen[12 * e:12 * (e + 1)] for e in range(3)]
    expected = [torch.randperm(12, generator=torch.Generator().manual_seed(5 + e)).tolist() for e in range(3)]
    assert orders == expected
    assert orders[0] != orders[1]


def test_train_step_clips_the_gradient_norm() -> None:
    from course_pkg.train.step import train_step

    torch.manual_seed(0)
    model = _tiny_vit()
    x, y = _tiny_data(6)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    train_step(model, x, y, opt)
    free = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    train_step(model, x, y, opt, grad_clip=1e-3)
    clipped = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert free > 1e-2 and clipped == pytest.approx(1e-3, rel=1e-4)


def test_fit_applies_grad_clip() -> None:
    """Clipped to 1e-12, gradients drown in AdamW's eps (1e-8): the weights barely move."""
    moved = {}
    for clip in (None, 1e-12):
        torch.manual_seed(0)
        model = _tiny_vit()
        before = _weights(model)
        fit(model, _tiny_data(), epochs=1, batch_size=4, lr=1e-2, weight_decay=0.0, grad_clip=clip,
            device="cpu", progress=False, amp="off")
        moved[clip] = sum((model.state_dict()[k] - v).abs().sum().item() for k, v in before.items())
    assert moved[1e-12] < 0.01 * moved[None]
