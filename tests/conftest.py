import json
import os
import socket
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    for cand in (os.environ.get("HYBRID_SWEEP_DATA"), ROOT.parent / "shared" / "data"):
        if cand and (Path(cand) / "lareqa" / "xquad-r" / "en.json").exists():
            return Path(cand).resolve()
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("LAReQA files not found: set HYBRID_SWEEP_DATA or place ../shared/data")
    return root


@pytest.fixture(scope="session")
def synthetic_cfg() -> dict:
    return yaml.safe_load((ROOT / "conf" / "synthetic" / "default.yaml").read_text())


def make_lareqa_doc(paragraphs: list[list[str]], questions: list[tuple[int, int, str, str]]) -> dict:
    """paragraphs: sentences per paragraph (one article each); questions: (para, sentence, id, text)."""
    data = []
    for p, sents in enumerate(paragraphs):
        breaks, pos = [], 0
        for s in sents:
            breaks.append([pos, pos + len(s)])
            pos += len(s) + 1
        qas = [{"id": qid, "question": text, "answers": [{"text": "x", "answer_start": breaks[s][0] + 1}]}
               for (pp, s, qid, text) in questions if pp == p]
        data.append({"title": f"a{p}", "paragraphs": [
            {"context": " ".join(sents), "sentences": sents, "sentence_breaks": breaks, "qas": qas}]})
    return {"version": "test", "data": data}


def compose(*overrides: str, config_name: str = "evaluate"):
    """Compose a config from conf/ as the CLI would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def free_port() -> int:
    """A free TCP port on the loopback interface (process-group rendezvous in tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_log(run_dir: Path) -> list[dict]:
    """The records of a training run's train_log.jsonl."""
    return [json.loads(line) for line in (Path(run_dir) / "train_log.jsonl").read_text().splitlines()]
