"""The one home of the null settings' defaults (config, `generate_nulls` and the CLI read it)."""

from __future__ import annotations

#: non-cortical null of the spin families (``"shuffle"``: uniform symmetric shuffle of
#: homologous pairs within each structure class; ``"moran"``: Moran spectral randomisation
#: within each class), see `spatiomol.nulls.spins`
SUBCORTEX_DEFAULT = "moran"
#: settings of the nulls an experiment uses (see `spatiomol.nulls.generate_nulls`):
#: ``n`` nulls drawn, ``top`` kept, null ``method``, ``seed``, ``min_moved`` (the
#: fraction of regions a selected null must move), ``subcortex`` (non-cortical null of
#: the spin families) and ``cge_match`` (None: the method's default, `CGE_MATCH_DEFAULT`)
NULL_DEFAULTS = {
    "n": 10000,
    "top": 10,
    "method": "cge",
    "seed": 0,
    "min_moved": 0.9,
    "subcortex": SUBCORTEX_DEFAULT,
    "cge_match": None,
}
