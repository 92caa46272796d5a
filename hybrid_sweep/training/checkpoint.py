"""Checkpoints: ``checkpoints/step-NNNNNNN/`` holds the model (sentence-transformers folder) and
``trainer_state.pt`` (optimizer, scheduler, sampler and RNG state); ``checkpoints/LATEST`` names the
newest complete one and is replaced atomically after it is written, so a kill mid-save leaves the
previous checkpoint in force. State is loaded with ``weights_only=True`` (no unpickling of code)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from hybrid_sweep.errors import DataError
from hybrid_sweep.io import write_text


def save_checkpoint(root: Path, step: int, encoder, state: dict, keep: int = 1) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"step-{step:07d}"
    shutil.rmtree(folder, ignore_errors=True)
    encoder.save(folder / "model")
    torch.save(state, folder / "trainer_state.pt")
    write_text(root / "LATEST", folder.name)
    old = sorted(p for p in root.glob("step-*") if p.is_dir() and p != folder)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return folder


def latest_checkpoint(root: Path) -> Path | None:
    pointer = root / "LATEST"
    if not pointer.exists():
        return None
    folder = root / pointer.read_text().strip()
    if not (folder / "trainer_state.pt").exists() or not (folder / "model" / "modules.json").exists():
        raise DataError(folder, "checkpoint named by LATEST is incomplete; delete the checkpoints folder to restart")
    return folder


def load_state(folder: Path) -> dict:
    try:
        return torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling/format failure means a corrupt file
        raise DataError(folder / "trainer_state.pt", f"corrupt checkpoint ({type(err).__name__})") from None
