"""Reports of a results folder: report.md and a self-contained report.html.

``write_report(results_dir)`` (``spatiomol report RESULTS``) is the entry point. It
composes the sections of `sections` (one function each: header, transfer, provenance,
nulls diagnostic, Tables 1–3, paired statistics, null families, figures, failures;
defined in `overview_sections`, `table_sections`, `null_sections`, `figure_sections` and
`brain_view_sections`, over the shared `context`), which write CSV tables and PNG figures
and return `document` blocks; both pages are rendered from those blocks. See `tables`,
`stats`, `figures`, `brain` (nilearn glass brains, per-region accuracy, interactive
views) and `cge_figure` (the nulls stage's Fig. 3).
"""

from spatiomol.reports.report import write_report

__all__ = ["write_report"]
