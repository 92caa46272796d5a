"""What a log file and a W&B dashboard receive: progress as plain periodic lines when the output is not a
terminal (no carriage returns), and every axis column of the results table in the W&B config."""

from __future__ import annotations

import io
import json

import pytest

from hybrid_sweep.encoders import build_encoder
from hybrid_sweep.progress import PlainProgress, progress
from tests.conftest import compose


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    bar = progress(100_000, "encode passages", unit="text", file=out)
    assert isinstance(bar, PlainProgress)
    for _ in range(100_000 // 7):
        bar.update(7)
    bar.set_postfix(loss="0.125")
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 10 <= len(lines) <= 12  # a line per tenth (+ the final count), however many updates
    assert lines[0].startswith("encode passages:  10% 10003/100000 text [")
    assert lines[-1].startswith("encode passages: 100% 99995/100000 text [") and lines[-1].endswith("loss=0.125")
    bar.close()  # a second close writes nothing
    assert out.getvalue() == text


def test_resumed_and_disabled_bars():
    out = io.StringIO()
    with progress(10, "train", initial=6, file=out) as bar:
        for _ in range(4):
            bar.update()
    assert out.getvalue().splitlines()[-1].startswith("train: 100% 10/10 it")
    quiet = io.StringIO()
    with progress(10, "train", disable=True, file=quiet) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_a_terminal_gets_tqdm():
    from tqdm import tqdm

    bar = progress(3, "x", file=Terminal())
    assert isinstance(bar, tqdm)
    bar.close()


def test_encoder_progress_in_a_log_is_plain_lines(tmp_path, monkeypatch, capsys):
    """The encode loop's bar through the shared helper: stderr captured (not a terminal) holds no '\\r'."""
    cfg = compose("encoder=tiny", "encoder.device=cpu", "encoder.progress=true", "encoder.batch_size=2").encoder
    texts = [f"text number {i} here" for i in range(40)]
    enc = build_encoder(cfg, texts, tmp_path / "tiny")
    capsys.readouterr()
    enc.encode(texts, "passage", desc="corpus")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("corpus:")]
    assert "\r" not in err and 1 <= len(lines) <= 11 and lines[-1].startswith("corpus: 100% 40/40 text")


# --- W&B ----------------------------------------------------------------------------------------------
class FakeRun:
    def __init__(self, **kwargs):
        self.kwargs, self.updates, self.finished = kwargs, [], None
        self.config = self
        self.summary = {}

    def update(self, values, allow_val_change=False):
        self.updates.append(dict(values))

    def log(self, record, step=None):
        pass

    def finish(self, exit_code=0):
        self.finished = exit_code


def test_wandb_config_carries_every_axis_and_the_sweep_group(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from hybrid_sweep.config import axis_values
    from hybrid_sweep.tracking import make_tracker

    runs = []
    monkeypatch.setattr(wandb, "init", lambda **kw: runs.append(FakeRun(**kw)) or runs[-1])
    cfg = compose("logger=wandb", "sweep_name=my_sweep", "data.languages=null", config_name="config")
    tracker = make_tracker(cfg, tmp_path)
    kwargs = runs[0].kwargs
    assert kwargs["group"] == "my_sweep"
    axes = axis_values(cfg)
    assert axes and all(kwargs["config"][k] == v for k, v in axes.items())
    assert {"sampler", "n_train_langs", "train_langs"} <= set(kwargs["config"])
    assert kwargs["config"]["train_langs"] == "all"  # not known before training
    # once training has written its summary, the data-dependent axes follow
    (tmp_path / "train_summary.json").write_text(json.dumps({"languages": ["de", "en", "es"]}))
    tracker.summary({"x/mono/map": 0.5})
    assert runs[0].updates == [{"n_train_langs": 3, "train_langs": "de,en,es"}]
    assert axis_values(cfg, {"languages": ["de", "en", "es"]})["train_langs"] == "de,en,es"
    tracker.finish()
    assert runs[0].finished == 0 and len(runs[0].updates) == 1
