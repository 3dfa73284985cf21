"""The one home of the null settings' defaults (config, `generate_nulls` and the CLI read it)."""

from __future__ import annotations

from spatiomol.nulls.families import CALIBRATED_METHODS

__all__ = ["CALIBRATED_METHODS", "NULL_DEFAULTS", "NULL_TUNING_DEFAULTS", "SUBCORTEX_DEFAULT"]

#: non-cortical null of the spin families (``"shuffle"``: uniform symmetric shuffle of
#: homologous pairs within each structure class; ``"moran"``: Moran spectral randomisation
#: within each class), see `spatiomol.nulls.spins`
SUBCORTEX_DEFAULT = "moran"
#: settings of the nulls an experiment uses (see `spatiomol.nulls.generate_nulls`):
#: ``n`` nulls drawn, ``top`` kept, null ``method``, ``seed``, ``min_moved`` (the
#: fraction of regions a selected null must move), ``subcortex`` (non-cortical null of
#: the spin families) and ``cge_match`` (None: the method's default, `CGE_MATCH_DEFAULT`);
#: ``neural_top`` is read by the experiment grid only (not by `generate_nulls`): neural
#: models are scored on the first ``min(top, neural_top)`` nulls, closed-form ones on all
#: ``top`` (`spatiomol.experiments.grid.null_count`)
#
#: Why ``anatomical`` (docs/calibration.md, benchmarks/results/verdict_calibration.md): on
#: simulated brains whose expression has no link to FC, its rank verdict
#: (`spatiomol.reports.verdict.true_vs_nulls`, shared folds) fires falsely on 6.8% of brains
#: (the ideal null: 5.4%) pooled over every scenario measured (isotropic space, anatomy in
#: doses, a model fitted to real expression; random and spatial splits; hcp-s100 and
#: hcp-s400), no cell significantly above the ideal null's, with the ideal null's power;
#: whole-brain Moran nulls, the default until then, are calibrated on isotropic space only
#: and fire falsely on 24–100% of brains whose expression carries anatomy; CGE-matched
#: spins (the paper's) fail even on isotropic space (0.16–0.78), and the paired test over
#: splits fails with every family, the ideal one included.
#: Why 99 and 19: every null is scored on the true brain's splits, and the rank verdict's
#: smallest p is 1/(K + 1) (Phipson–Smyth): K = 99 gives 0.01 for the closed-form models,
#: whose runs cost milliseconds; K = 19 gives 0.05 for the neural ones, whose runs cost
#: minutes (19 is the fewest nulls with which the verdict can reject at α = 0.05).
NULL_DEFAULTS = {
    "n": 10000,
    "top": 99,
    "neural_top": 19,
    "method": "anatomical",
    "seed": 0,
    "min_moved": 0.9,
    "subcortex": SUBCORTEX_DEFAULT,
    "cge_match": None,
}

#: settings of how nulls are drawn and scored that are not part of an experiment's
#: ``nulls`` config (``generate_nulls``, ``score_nulls``, ``draw_nulls`` and the report's
#: CGE figure read them): ``bin_mm``, the width in mm of the distance bins of the CGE
#: curves, and ``pca_variance``, the variance of ``X`` kept by the PCA of ``pca-cge`` (the
#: CGE) and ``variogram`` (the maps made surrogate). Kept apart from `NULL_DEFAULTS`,
#: whose keys are the config's ``nulls`` keys and enter the settings hash of every run.
NULL_TUNING_DEFAULTS = {
    "bin_mm": 5.0,
    "pca_variance": 0.95,
}

# `CALIBRATED_METHODS` (imported above) is derived from the family specs
# (`spatiomol.nulls.families`, ``NullFamily.calibrated``): the families whose rank verdict
# kept its false-positive rate ≤ 0.05 on simulated brains whose expression carries nothing
# beyond space (docs/calibration.md); the report says which of an experiment's families these are
