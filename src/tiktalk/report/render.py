"""The one rendering path of the report's tables: CSV, Markdown and booktabs LaTeX.

Two levels. The primitives write every table of the report: :func:`to_csv`,
:func:`markdown_table` (one GitHub-flavoured table) and :func:`latex_table` (a booktabs
``table`` of titled sections), with the escaping of each format (:func:`md_escape`,
:func:`latex_escape`). A table whose rows share one set of columns is described once and
rendered to all three formats by :func:`to_markdown` and :func:`to_latex`: a list of
:class:`Column` (key, the paper's header, a number format, and which way is better) and one or
more :class:`Block` of rows (e.g. "Ours", then "Paper (reported: ...)"). Every row is a mapping
``{"label": the row's name, <column key>: value}``; a value is a number, None (an empty cell:
"—" in Markdown, "--" in LaTeX) or a string (shown as is, e.g. "cannot score"). In LaTeX the
best number of every column with a direction (``better="high"`` or ``"low"``) is bold,
separately inside each block (ours are never compared with the paper's). Tables with cells of
their own (Table 3's intervals, Table 4's kappa row) build their cells and call the primitives.

Captions say what the numbers are measured on (:func:`data_source_name`): the TikTalk release,
or the embedded demo data, which is never called "TikTalk".
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

MISSING = {"md": "—", "tex": "--", "csv": ""}

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: Any) -> str:
    """Escape LaTeX's special characters for text mode ('+' and '-' need nothing)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def md_escape(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def data_source_name(source: str) -> str:
    """How a caption names the data: the TikTalk release, or the embedded demo data."""
    return {"release": "TikTalk", "demo": "the embedded demo data (not TikTalk)"}.get(source, source)


def split_phrase(split: str, source: str) -> str:
    """``"the TikTalk test set"`` / ``"the test split of the embedded demo data (not TikTalk)"``."""
    if source == "release":
        return f"the TikTalk {split} set"
    return f"the {split} split of {data_source_name(source)}"


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    fmt: str = "{:.2f}"
    better: str | None = None          # "high" | "low" | None: not compared

    def __post_init__(self):
        if self.better not in (None, "high", "low"):
            raise ValueError(f"column {self.key}: better must be 'high', 'low' or None")

    def cell(self, value, missing: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return missing
        if isinstance(value, str):
            return value
        return self.fmt.format(value)


@dataclass
class Block:
    title: str | None
    rows: list[Mapping] = field(default_factory=list)


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def best_cells(columns: Sequence[Column], rows: Sequence[Mapping]) -> dict[str, str]:
    """column key -> the formatted best value among ``rows`` (ties: every equal cell is bold)."""
    out = {}
    for c in columns:
        if c.better is None:
            continue
        values = [r.get(c.key) for r in rows if _numeric(r.get(c.key))]
        if values:
            best = max(values) if c.better == "high" else min(values)
            out[c.key] = c.fmt.format(best)
    return out


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], align: str) -> str:
    """One Markdown table (no trailing newline): ``align`` has one letter per column, ``l``
    or ``r``, as a LaTeX column spec; every cell is escaped (:func:`md_escape`)."""
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r}: one 'l' or 'r' per column of {list(header)}")
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
    return "\n".join(lines)


def latex_bold(text: str) -> str:
    return rf"\textbf{{{text}}}"


def latex_table(header: Sequence[str], sections: Sequence[tuple[str | None, Sequence[Sequence[str]]]],
                align: str, caption: str, label: str) -> str:
    """A booktabs ``table``. ``header`` and the cells of ``sections`` (``(title, rows)``; a
    title, when not None, is an italic row across the table) are LaTeX already, as is
    ``caption`` (escape plain text with :func:`latex_escape`)."""
    ncols = len(align)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{" + align + "}",
             r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    for i, (title, rows) in enumerate(sections):
        if i:
            lines.append(r"\midrule")
        if title is not None:
            lines.append(rf"\multicolumn{{{ncols}}}{{l}}{{\textit{{{latex_escape(title)}}}}} \\")
        lines += [" & ".join(cells) + r" \\" for cells in rows]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_markdown(columns: Sequence[Column], blocks: Sequence[Block], caption: str | None = None,
                label_title: str = "") -> str:
    out = [f"{caption}\n"] if caption else []
    align = "l" + "r" * len(columns)
    for block in blocks:
        if not block.rows:
            continue
        if block.title:
            out.append(f"### {md_escape(block.title)}\n")
        out.append(markdown_table([label_title] + [c.title for c in columns],
                                  ([r.get("label", "")] + [c.cell(r.get(c.key), MISSING["md"]) for c in columns]
                                   for r in block.rows), align))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def to_latex(columns: Sequence[Column], blocks: Sequence[Block], caption: str, label: str,
             label_title: str = "", notes: Sequence[str] = ()) -> str:
    """A booktabs ``table``; ``caption`` is plain text (escaped here), ``notes`` appended to it."""
    shown = [b for b in blocks if b.rows]
    sections = []
    for block in shown:
        best = best_cells(columns, block.rows)
        rows = []
        for r in block.rows:
            cells = [latex_escape(r.get("label", ""))]
            for c in columns:
                text = c.cell(r.get(c.key), MISSING["tex"])
                bold = _numeric(r.get(c.key)) and best.get(c.key) == text
                cells.append(latex_bold(latex_escape(text)) if bold else latex_escape(text))
            rows.append(cells)
        sections.append((block.title if block.title and len(shown) > 1 else None, rows))
    header = [latex_escape(label_title)] + [latex_escape(c.title) for c in columns]
    text = latex_escape(caption) + "".join(" " + latex_escape(n) for n in notes)
    return latex_table(header, sections, "l" + "r" * len(columns), text, label)


def to_csv(fieldnames: Sequence[str], rows: Sequence[Mapping], formats: Mapping[str, str] | None = None) -> str:
    """Plain CSV of ``rows`` (None -> empty cell; floats with ``formats[key]`` or repr)."""
    formats = formats or {}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fieldnames), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        out = {}
        for k in fieldnames:
            v = r.get(k)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                out[k] = ""
            elif isinstance(v, float) and k in formats:
                out[k] = formats[k].format(v)
            else:
                out[k] = v
        writer.writerow(out)
    return buf.getvalue()
