"""Train an encoder with hybrid batches (Hydra app).

    python -m hybrid_sweep.train encoder=<preset> data=<source> sampler=<hybrid|mono|cross|mixed> \
        train.max_steps=N output_dir=<dir>

Writes train_log.jsonl, checkpoints/ (resumable) and model/ (a sentence-transformers folder). Several
processes: ``torchrun --nproc_per_node=K -m hybrid_sweep.train ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from hybrid_sweep.cli import CONF_DIR, quiet_libraries, user_errors
from hybrid_sweep.config import load
from hybrid_sweep.io import write_text


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    cfg = load(cfg, "train")  # the typed schema: one error naming the key, before anything is written
    quiet_libraries()
    from hybrid_sweep.tracking import make_tracker
    from hybrid_sweep.training import distributed as dist
    from hybrid_sweep.training.trainer import train

    output_dir = Path(cfg.output_dir)
    rank, _ = dist.init_from_env()
    tracker = make_tracker(cfg, output_dir, rank)
    try:
        summary = train(cfg, output_dir, tracker)
    except BaseException:
        tracker.finish(failed=True)
        raise
    tracker.finish()
    if dist.rank() == 0:
        write_text(output_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        write_text(output_dir / "train_summary.json", json.dumps(summary, indent=2))
        print(json.dumps(summary))
        print(f"model: {(output_dir / 'model').resolve()}")


if __name__ == "__main__":
    import sys

    from hybrid_sweep.cli import check_output_root, check_overrides

    check_overrides(sys.argv, schema="train")
    check_output_root(sys.argv, "output_dir", create=False)
    main()
