"""`spatiomol.reports.sections`: the report's section order, and the names it re-exports from the section modules."""

from __future__ import annotations

from spatiomol.reports import context, null_sections, sections, table_sections


def test_sections_reexports_every_name_it_lists():
    missing = [name for name in sections.__all__ if not hasattr(sections, name)]
    assert missing == []
    # the re-exports are the section modules' own objects, not copies
    assert sections.ReportContext is context.ReportContext and sections.slug is context.slug
    assert sections.null_families_section is null_sections.null_families_section
    assert sections.table1_section is table_sections.table1_section


def test_dataset_sections_are_in_report_order():
    assert [f.__name__ for f in sections.DATASET_SECTIONS] == [
        "headline_section",
        "provenance_section",
        "nulls_section",
        "table1_section",
        "table2_section",
        "table3_section",
        "inputs_section",
        "paired_statistics_section",
        "null_families_section",
        "figures_section",
    ]


def test_text_grid_renders_the_first_match_and_a_dash_where_none():
    import pandas as pd

    from spatiomol.reports import tables

    frame = pd.DataFrame({"model": ["a", "a", "b"], "split": ["x", "y", "x"], "v": [1, 2, 3]})
    grid = tables.text_grid(
        frame,
        [("A", {"model": "a"}), ("B", {"model": "b"})],
        [("X", {"split": "x"}), ("Y", {"split": "y"})],
        lambda r: str(r["v"]),
    )
    assert grid.to_dict(orient="index") == {"A": {"X": "1", "Y": "2"}, "B": {"X": "3", "Y": "–"}}
