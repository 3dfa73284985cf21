"""What the neural models learned: region embeddings, SMT attention along the genome, gene attributions.

`explain_run(results_dir, model, split)` (``spatiomol explain``) loads or refits one
stored run's model and writes all three; the pieces work on any fitted MLP / SMT:
`region_embeddings` (`spatiomol.explain.embeddings`), `attention_profiles`
(`spatiomol.explain.attention`), `gene_attributions` / `network_rankings`
(`spatiomol.explain.attributions`). Sits above experiments in the import order (cli →
explain/reports → experiments → models).
"""

from importlib import import_module
from typing import Any

#: public name → defining module (imported on first use: torch loads only when needed)
_EXPORTS = {
    "attention_profiles": "attention",
    "token_positions": "attention",
    "EdgeAttributions": "attributions",
    "gene_attributions": "attributions",
    "network_rankings": "attributions",
    "rank_genes": "attributions",
    "pca_map": "embeddings",
    "region_embeddings": "embeddings",
    "Explanation": "run",
    "explain_run": "run",
    "find_run": "run",
    "parse_split": "run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'spatiomol.explain' has no attribute {name!r}")
    return getattr(import_module(f"spatiomol.explain.{_EXPORTS[name]}"), name)
