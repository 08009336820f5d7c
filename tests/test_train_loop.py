"""hwsim's one training loop and its strategy hooks (hwsim.capture.train.train_and_capture)."""

from __future__ import annotations

import pytest

from hwsim.capture import CaptureConfig, TrainConfig
from hwsim.capture.train import SingleProcess, Strategy, train_and_capture
from hwsim.trace.format import load

CONFIG = TrainConfig(model="lenet300", epochs=2, batch_size=16, limit_train=40,
                     capture=CaptureConfig(s=2.0, sample_every=2, seed=5))


class Recording(SingleProcess):
    """SingleProcess that logs every hook call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattribute__(self, name: str):
        attr = object.__getattribute__(self, name)
        if name in {"start", "trace_dir", "learning_rate", "capture_config", "prepare", "schedule", "epoch_batches",
                    "train_mode", "before_forward", "after_backward", "before_eval", "meta", "summary", "finish"}:
            object.__getattribute__(self, "calls").append(name)
        return attr


def test_the_loop_calls_every_hook_in_order_and_the_default_is_single_process(tmp_path):
    rec = Recording()
    r = train_and_capture(CONFIG, strategy=rec, out=tmp_path / "rec")
    per_epoch = -(-40 // 16)  # the last batch is short, not dropped
    assert r.iterations == 2 * per_epoch
    step = ["before_forward", "after_backward"] * per_epoch
    epoch = ["train_mode", "epoch_batches", *step]
    assert rec.calls == ["start", "trace_dir", "learning_rate", "capture_config", "prepare", "schedule", "meta",
                         *epoch, *epoch, "before_eval", "summary", "finish"]
    default = train_and_capture(CONFIG, out=tmp_path / "default")
    assert (default.test_acc, default.train_loss) == (r.test_acc, r.train_loss)
    a, b = (load(tmp_path / d) for d in ("rec", "default"))
    assert a.iterations == b.iterations and a.meta == b.meta and a.sampled_iterations == b.sampled_iterations
    for name in (tmp_path / "rec" / "samples").iterdir():
        assert name.read_bytes() == (tmp_path / "default" / "samples" / name.name).read_bytes()


class ThreeSteps(SingleProcess):
    def schedule(self, config, n_train):
        return 2, 2, 3  # 2 epochs of at most 2 iterations, 3 in all


def test_the_loop_follows_the_strategy_schedule(tmp_path):
    r = train_and_capture(CONFIG, strategy=ThreeSteps(), out=tmp_path / "t")
    tr = load(tmp_path / "t")
    assert r.iterations == 3 and [it.epoch for it in tr.iterations] == [0, 0, 1]
    assert tr.sampled_iterations[-1] == 2  # the last iteration of the schedule is always sampled


def test_the_strategy_must_be_a_strategy():
    with pytest.raises(TypeError, match="strategy must be a hwsim.capture.train.Strategy, got str"):
        train_and_capture(CONFIG, strategy="ddp")  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError):
        train_and_capture(CONFIG, strategy=Strategy())  # the base class has no schedule
