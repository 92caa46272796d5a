"""Configs are saved beside the results, so a key that looks like a secret is refused before anything
is written: secrets belong in the environment (``WANDB_API_KEY``, ``HF_TOKEN``)."""

from __future__ import annotations

import re

from hybrid_sweep.errors import ConfigError

SECRET_KEY = re.compile(r"(^|[._])(api_?key|token|secret|password|passwd|credentials?)$", re.IGNORECASE)


def secret_error(key: str) -> ConfigError:
    return ConfigError(key, "looks like a secret; configs are saved beside the results, so pass secrets through "
                            "the environment (WANDB_API_KEY or `wandb login`, HF_TOKEN or `hf auth login`)")


def check_no_secrets(node, prefix: str = "") -> None:
    """Refuse a composed config (DictConfig or dict) that carries a secret-looking key (it would be
    written to config.yaml)."""
    if not isinstance(node, dict):
        from omegaconf import DictConfig, OmegaConf

        if isinstance(node, DictConfig):
            node = OmegaConf.to_container(node)
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if SECRET_KEY.search(str(key)):
                raise secret_error(dotted)
            check_no_secrets(value, dotted + ".")
