"""Compatibility shim, not a benchmark: ``training_recipe.py`` (still at the top level of
``benchmarks/`` while a study runs from it) imports these names from ``smt_ablation``. The
SMT ablation itself is ``studies/smt_ablation.py``; the CSV helpers live in ``harness.py``.
Remove this file when ``training_recipe.py`` moves into ``studies/``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: `harness`, `studies`

from harness import RESULTS, append_row, fmt, load_brain, read_rows
from studies.smt_ablation import shipped_config

__all__ = ["RESULTS", "append_row", "fmt", "load_brain", "read_rows", "shipped_config"]
