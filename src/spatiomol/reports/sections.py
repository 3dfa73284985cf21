"""The sections of a report, in order; `spatiomol.reports.report.write_report` composes them.

Every section takes the `ReportContext` (and a dataset where it is per dataset), writes
its CSV tables / PNG figures under the report folder and returns the `document` blocks
that show them; ``report.md`` and ``report.html`` are both rendered from those blocks.
`report_blocks` is the report's order: the header, the transfer table, the resolution
ladder (with two or more datasets), then for each dataset `DATASET_SECTIONS`, then the
failed runs.

The sections live in modules named after what they show, and are re-exported here:

- `spatiomol.reports.context`: `ReportContext` and the look-ups every section shares
  (`slug`, `best_model`, `shown_family_note`, `dataset_regions`, `nulls_files`, ...);
- `spatiomol.reports.headline_sections`: the headline of each dataset (best models, what each
  null verdict rules out, the gap to the anatomy baseline);
- `spatiomol.reports.overview_sections`: header, dataset provenance, transfer, failed runs;
- `spatiomol.reports.table_sections`: Tables 1–3 and the paired statistics;
- `spatiomol.reports.null_sections`: the nulls diagnostic and the true input against each
  null family;
- `spatiomol.reports.figure_sections`: connectomes, per-network gain, parameters, CGE curves;
- `spatiomol.reports.brain_view_sections`: glass-brain connectomes, per-region accuracy and
  the interactive views;
- `spatiomol.reports.input_sections`: one architecture read with different inputs
  (expression, coordinates, SC; Table-3 style, issue 27);
- `spatiomol.reports.resolution_sections`: the same models across the folder's datasets
  (the resolution ladder, Tables 5–8).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from spatiomol.reports.brain_view_sections import brain_views, mean_region_accuracy, region_accuracy_view
from spatiomol.reports.context import (
    SPLIT_ORDER,
    RegionsUnavailable,
    ReportContext,
    best_model,
    dataset_regions,
    family_settings,
    nulls_files,
    shown_family_note,
    slug,
)
from spatiomol.reports.document import Block
from spatiomol.reports.figure_sections import (
    cge_figures,
    connectome_edges,
    connectome_run,
    figures_section,
    parameters_figure,
)
from spatiomol.reports.headline_sections import headline_section
from spatiomol.reports.input_sections import inputs_section
from spatiomol.reports.null_sections import (
    FAMILY_COLUMNS,
    calibration_text,
    family_verdicts,
    null_families_section,
    nulls_diagnostic,
    nulls_section,
    own_expression_fraction,
    smallest_signflip_p,
)
from spatiomol.reports.overview_sections import failures_section, header_section, provenance_section, transfer_section
from spatiomol.reports.resolution_sections import resolution_section
from spatiomol.reports.table_sections import (
    STAT_COLUMNS,
    not_trained_blocks,
    not_trained_counts,
    paired_statistics_section,
    table1_section,
    table2_section,
    table3_section,
)

__all__ = [
    "DATASET_SECTIONS",
    "FAMILY_COLUMNS",
    "SPLIT_ORDER",
    "STAT_COLUMNS",
    "RegionsUnavailable",
    "ReportContext",
    "best_model",
    "brain_views",
    "calibration_text",
    "cge_figures",
    "connectome_edges",
    "connectome_run",
    "dataset_regions",
    "failures_section",
    "family_settings",
    "family_verdicts",
    "figures_section",
    "header_section",
    "headline_section",
    "inputs_section",
    "mean_region_accuracy",
    "not_trained_blocks",
    "not_trained_counts",
    "null_families_section",
    "nulls_diagnostic",
    "nulls_files",
    "nulls_section",
    "own_expression_fraction",
    "paired_statistics_section",
    "parameters_figure",
    "provenance_section",
    "region_accuracy_view",
    "report_blocks",
    "resolution_section",
    "shown_family_note",
    "slug",
    "smallest_signflip_p",
    "table1_section",
    "table2_section",
    "table3_section",
    "transfer_section",
]

#: the sections of each dataset, in report order
DATASET_SECTIONS: tuple[Callable[[ReportContext, str], list[Block]], ...] = (
    headline_section,
    provenance_section,
    nulls_section,
    table1_section,
    table2_section,
    table3_section,
    inputs_section,
    paired_statistics_section,
    null_families_section,
    figures_section,
)


def report_blocks(ctx: ReportContext, n_runs: int, transfer: pd.DataFrame, ids: set[str] | None) -> list[Block]:
    """Every block of the report, in order: header, transfer, the ladder across datasets, each
    dataset's sections, failed runs.

    Parameters
    ----------
    ctx : ReportContext
    n_runs : int
        Finished current runs (grid and transfer), for the header.
    transfer : DataFrame
        The current transfer rows (`transfer_section`; empty: no transfer table).
    ids : set of str or None
        Current run ids, whose failure records `failures_section` lists (None: every record).
    """
    blocks = header_section(ctx, n_runs=n_runs)
    blocks += transfer_section(ctx, transfer)
    blocks += resolution_section(ctx)
    for dataset in dict.fromkeys(ctx.df["dataset"]):
        for section in DATASET_SECTIONS:
            blocks += section(ctx, dataset)
    blocks += failures_section(ctx, ids)
    return blocks
