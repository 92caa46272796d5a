"""Analysis of a results root: tables with confidence intervals, scaling fits, paired tests, figures."""

import hashlib
from pathlib import Path


def _code_version() -> str:
    """Hash of the analysis sources, the results schema and the study declaration's parser, as imported: a report made by other code is
    redone even when the results did not change."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for source in sorted(here.glob("*.py")) + [here.parent / "results_schema.py", here.parent / "config" / "study.py"]:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()
