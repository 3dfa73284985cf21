"""Reports of a results folder: Tables 1–3 (Markdown + CSV), paired statistics and figures.

``write_report(results_dir)`` (``spatiomol report RESULTS``) is the entry point; see
`tables`, `stats`, `figures` and `cge_figure` (the nulls stage's Fig. 3).
"""

from spatiomol.reports.report import write_report

__all__ = ["write_report"]
