"""The report as a list of blocks, rendered to Markdown (``report.md``) and HTML (``report.html``).

Every report section (`spatiomol.reports.sections`) returns blocks; the two renderers
walk the same list, so the pages hold the same headings, tables and figures. Figures are
PNG files under the report folder: Markdown links them, HTML inlines them as base64
``data:`` URIs so that ``report.html`` is one self-contained file that opens from disk
with no server and no network. `Interactive` blocks (nilearn's ``view_connectome``
pages) exist only in the HTML, each in an ``<iframe srcdoc=...>``.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spatiomol.reports.tables import format_value, to_markdown


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Text with Markdown inline marks (``**bold**``, ``_italic_``, ```code```)."""

    text: str


@dataclass(frozen=True)
class Quote:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A formatted table (cells are text; ``**…**`` marks the best value)."""

    frame: pd.DataFrame
    index: bool = True


@dataclass(frozen=True)
class Figure:
    """A PNG under the report folder; ``alt`` is its alt text, ``caption`` the line under it."""

    path: Path
    alt: str
    caption: str


@dataclass(frozen=True)
class Interactive:
    """A complete HTML page (HTML report only), in an iframe ``height`` px high under ``title``."""

    page: str
    caption: str
    title: str = ""
    height: int = 560


Block = Heading | Paragraph | Quote | Bullets | Table | Figure | Interactive


# ------------------------------------------------------------------ Markdown
def markdown_lines(block: Block, out: Path) -> list[str]:
    """The Markdown lines of one block (each ends with a blank line)."""
    if isinstance(block, Heading):
        return [f"{'#' * block.level} {block.text}", ""]
    if isinstance(block, Paragraph):
        return [block.text, ""]
    if isinstance(block, Quote):
        return [f"> {block.text}", ""]
    if isinstance(block, Bullets):
        return [*(f"- {item}" for item in block.items), ""]
    if isinstance(block, Table):
        return [to_markdown(block.frame, index=block.index)]
    if isinstance(block, Figure):
        rel = Path(block.path).relative_to(out).as_posix()
        return [f"![{block.alt}]({rel})", "", f"_{block.caption}_", ""]
    if isinstance(block, Interactive):
        return []
    raise TypeError(f"not a report block: {block!r}")


def render_markdown(blocks: list[Block], out: Path) -> str:
    return "\n".join(line for block in blocks for line in markdown_lines(block, out))


# ---------------------------------------------------------------------- HTML
_INLINE = (
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"`(.+?)`"), r"<code>\1</code>"),
    (re.compile(r"(?<![\w])_(.+?)_(?![\w])"), r"<em>\1</em>"),
)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1300px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0 1.4em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-style: italic; color: #444; font-size: 14px; }
blockquote { border-left: 4px solid #bbb; margin: 0; padding: .2em 1em; color: #444; }
iframe { width: 100%; border: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def inline_html(text: str) -> str:
    """Escape ``text`` and turn its Markdown inline marks into tags."""
    out = html.escape(str(text), quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def png_data_uri(path: str | Path) -> str:
    """``data:image/png;base64,...`` of a PNG file."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{path}: not a PNG file (expected the PNG signature)")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def html_table(frame: pd.DataFrame, index: bool = True) -> str:
    if frame.empty:
        return "<p><em>no rows</em></p>"
    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    head = "".join(f"<th>{inline_html(c)}</th>" for c in cols)
    rows = []
    for idx, row in frame.iterrows():
        cells = ([str(idx)] if index else []) + [format_value(v) for v in row.tolist()]
        rows.append("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def html_lines(block: Block) -> list[str]:
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        return [f"<h{level}>{inline_html(block.text)}</h{level}>"]
    if isinstance(block, Paragraph):
        return [f"<p>{inline_html(block.text)}</p>"]
    if isinstance(block, Quote):
        return [f"<blockquote>{inline_html(block.text)}</blockquote>"]
    if isinstance(block, Bullets):
        return ["<ul>", *(f"<li>{inline_html(item)}</li>" for item in block.items), "</ul>"]
    if isinstance(block, Table):
        return [html_table(block.frame, block.index)]
    if isinstance(block, Figure):
        return [
            "<figure>",
            f'<img src="{png_data_uri(block.path)}" alt="{html.escape(block.alt)}">',
            f"<figcaption>{inline_html(block.caption)}</figcaption>",
            "</figure>",
        ]
    if isinstance(block, Interactive):
        return [
            *([f"<h3>{inline_html(block.title)}</h3>"] if block.title else []),
            '<figure class="interactive">',
            f'<iframe srcdoc="{html.escape(block.page, quote=True)}" height="{int(block.height)}"></iframe>',
            f"<figcaption>{inline_html(block.caption)}</figcaption>",
            "</figure>",
        ]
    raise TypeError(f"not a report block: {block!r}")


def render_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page (inline CSS, images as data URIs, no external links)."""
    body = "\n".join(line for block in blocks for line in html_lines(block))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
