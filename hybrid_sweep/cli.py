"""Shared CLI plumbing: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
from pathlib import Path

from hybrid_sweep.config.secrets import SECRET_KEY, check_no_secrets, secret_error  # noqa: F401
from hybrid_sweep.errors import ConfigError, HybridSweepError

EXIT_USER_ERROR = 2
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")  # absolute: works for `python -m` entry points


def user_errors(fn):
    """Wrap a Hydra task function so a :class:`HybridSweepError`, or a failed write (disk full, read-only,
    permission denied), prints one line and exits non-zero."""
    from hybrid_sweep.io import storage_error

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HybridSweepError as err:
            _exit(str(err))
        except Exception as err:
            storage = storage_error(err)
            if storage is None:
                raise
            _exit(str(storage))

    return wrapper


def quiet_libraries() -> None:
    """Keep library chatter (load reports, shard progress bars) out of run logs."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    for name in ("sentence_transformers", "httpx", "urllib3", "filelock"):
        logging.getLogger(name).setLevel(logging.WARNING)


def hoist_multirun_flag(argv: list[str]) -> list[str]:
    """Let ``-m`` stand anywhere: Hydra's parser (argparse, not intermixed) only accepts overrides after
    it when it comes first, so ``+sweep=x -m train.max_steps=3`` would be rejected."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return argv[:1] + flags + [a for a in argv[1:] if a not in ("-m", "--multirun")]


def cap_local_launcher(argv: list[str]) -> list[str]:
    """``hydra/launcher=submitit_local`` becomes ``submitit_local_capped`` (conf/hydra/launcher/): the same
    launcher, at most as many jobs at once as this machine has cores, instead of every job at once."""
    return [("hydra/launcher=submitit_local_capped" if a == "hydra/launcher=submitit_local" else a) for a in argv]


def check_overrides(argv: list[str], schema: str = "config") -> None:
    """Before Hydra composes anything: unknown config-group options (a preset, a sweep, a language set),
    a key the typed schema does not declare, and a key given twice are one line on stderr and exit 2,
    instead of Hydra's multi-line reports."""
    from hybrid_sweep.config.load import undeclared
    from hybrid_sweep.config.preset_keys import check_preset_keys

    conf = Path(CONF_DIR)
    seen: dict[str, str] = {}
    for arg in argv[1:]:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        bare = key.lstrip("+~")
        group = bare.split("@", 1)[0]
        if bare in seen and seen[bare] != value:
            _exit(f"{bare}: given twice ({seen[bare]!r} and {value!r}); keep one")
        seen[bare] = value
        if SECRET_KEY.search(bare):
            _exit(str(secret_error(bare)))
        folder = conf / group
        declared = None if key[0] in "+~" or "/" in bare or "@" in bare or bare.startswith("hydra") or folder.is_dir() \
            else undeclared(bare, schema)
        if declared is not None:
            _exit(f"{bare}: unknown key (declared: {declared})")
        if group.startswith("hydra/") and "." not in group and not key.startswith("~"):
            options = hydra_group_options(group)  # hydra/launcher, hydra/sweeper: plugins' options too
        elif "." in group or group.startswith("hydra") or not folder.is_dir() or key.startswith("~") or value in ("", "null"):
            continue
        else:
            options = sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "base")
        for option in value.split(","):
            if option not in options:
                _exit(f"{group}: unknown option {option!r}; available: {', '.join(options)}")
    try:  # a key the chosen preset lacks (logger.mode with logger=none): one line, not Hydra's report
        check_preset_keys(argv[1:], conf, schema)
    except ConfigError as err:
        _exit(str(err))


def hydra_group_options(group: str) -> list[str]:
    """The options of a config group as Hydra sees them: conf/ and the installed plugins (launchers,
    sweepers), so ``hydra/launcher=slurmm`` is one line rather than Hydra's listing."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    return sorted(ConfigLoaderImpl(config_search_path=create_config_search_path(CONF_DIR)).get_group_options(group))


def _exit(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def check_output_root(argv: list[str], key: str = "results_root", create: bool = True) -> None:
    """Hydra creates its log folder under the results root before any of our code runs: check that the
    root can be created, so an unwritable one is one line rather than a traceback. ``create=False`` (the
    single-stage CLIs, whose output folder appears only once the config is valid): check the nearest
    existing parent instead, leaving the folder uncreated."""
    for arg in argv[1:]:
        if arg.startswith(f"{key}="):
            root = Path(arg.split("=", 1)[1]).expanduser()
            probe = root if create else next((p for p in (root, *root.absolute().parents) if p.exists()), root)
            try:
                if create:
                    root.mkdir(parents=True, exist_ok=True)
                elif not probe.is_dir():
                    raise NotADirectoryError(20, "Not a directory")
                with tempfile.TemporaryFile(dir=probe):  # an existing but read-only folder fails here
                    pass
            except OSError as err:
                _exit(f"{key}: cannot write to {root} ({err.strerror or type(err).__name__})")
