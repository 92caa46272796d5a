"""Typed, validated stage configs (Hydra structured configs) and what derives from their field marks:
the run id's content, the stage-cache keys, collect's condition keys and the results' axis columns."""

from hybrid_sweep.config.derive import (axis_specs, axis_values, cache_identity, eval_identity, is_condition_override,
                                        semantic_config)
from hybrid_sweep.config.load import SCHEMAS, load, register
from hybrid_sweep.config.stages import CONFIG_SCHEMA_VERSION, AppConfig

register()

__all__ = ["AppConfig", "CONFIG_SCHEMA_VERSION", "SCHEMAS", "axis_specs", "axis_values", "cache_identity", "eval_identity",
           "is_condition_override", "load", "register", "semantic_config"]
