"""Where benchmark files live: ``HYBRID_SWEEP_DATA`` / ``paths.data_root``, else a user cache filled
from the public LAReQA GitHub repository on first use."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import platformdirs

from hybrid_sweep.errors import DataError
from hybrid_sweep.io import atomic_path

ENV_VAR = "HYBRID_SWEEP_DATA"
LAREQA_URL = "https://raw.githubusercontent.com/google-research-datasets/lareqa/{commit}/{folder}/{lang}.json"
# Pinned commits of google-research-datasets/lareqa (mlqa-r only exists in the history).
LAREQA_COMMITS = {
    "xquad-r": "5405d2a77e83d5ccb47623a3f9e5604c3f103193",
    "mlqa-r": "354d67d1cd066854cdfbf5ad0e6105528976141d",
}


def data_root(configured: str | None = None) -> tuple[Path, bool]:
    """Return (root, user_supplied). Config wins over the env var; the cache is the fallback."""
    for value in (configured, os.environ.get(ENV_VAR)):
        if value:
            return Path(value).expanduser().resolve(), True
    return Path(platformdirs.user_cache_dir("hybrid_sweep")) / "data", False


def ensure_lareqa_file(root: Path, folder: str, lang: str, user_supplied: bool, timeout: float = 30) -> Path:
    """Path of ``<root>/lareqa/<folder>/<lang>.json``, downloading it into the cache if needed."""
    path = root / "lareqa" / folder / f"{lang}.json"
    if path.exists():
        return path
    if user_supplied:
        raise DataError(path, f"file not found (data root from paths.data_root / ${ENV_VAR})")
    url = LAREQA_URL.format(commit=LAREQA_COMMITS[folder], folder=folder, lang=lang)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(path) as tmp:
            tmp.write_bytes(resp.read())
    except (urllib.error.URLError, OSError) as err:
        raise DataError(
            path, f"not cached and download from {url} failed ({err}); offline? set {ENV_VAR}=<folder with lareqa/>"
        ) from None
    return path
