"""Zero-shot evaluation of an encoder on one benchmark (Hydra app; the work is
``hybrid_sweep.evaluation.pipeline.run_evaluation``).

    python -m hybrid_sweep.evaluate encoder=<preset> eval=<synthetic|xquad_r|mlqa_r|flores|beir|...> output_dir=<dir>

Writes into ``output_dir``: runs/ and qrels/ (TREC), per_query.parquet, language_groups.parquet (by
resource class, seen / unseen), metrics.csv, config.yaml (the resolved config) and, last,
metrics.parquet: its presence means the evaluation finished.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from hybrid_sweep.cli import CONF_DIR, quiet_libraries, user_errors
from hybrid_sweep.config import load
from hybrid_sweep.errors import ConfigError
from hybrid_sweep.evaluation.pipeline import run_evaluation, summary_table


@hydra.main(config_path=CONF_DIR, config_name="evaluate", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    cfg = load(cfg, "evaluate")  # the typed schema: one error naming the key, before anything is written
    quiet_libraries()
    output_dir = Path(cfg.output_dir)
    if (output_dir / "metrics.parquet").exists() and not cfg.overwrite:
        raise ConfigError("output_dir", f"{output_dir} already holds results; pass overwrite=true or another output_dir")
    out = run_evaluation(cfg, output_dir)
    print(summary_table(out.metrics))
    print(f"results: {output_dir.resolve()}")


if __name__ == "__main__":
    import sys

    from hybrid_sweep.cli import check_output_root, check_overrides

    check_overrides(sys.argv, schema="evaluate")
    check_output_root(sys.argv, "output_dir", create=False)
    main()
