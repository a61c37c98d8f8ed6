"""Table 3 reference data, the Table 3 writers (CSV / Markdown / LaTeX) and the figures."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pandas as pd
import pytest

from tiktalk.formats import METRIC_KEYS
from tiktalk.io import write_json
from tiktalk.report.paper import (
    ROW_TYPE,
    TABLE3,
    TABLE3_COLUMNS,
    TABLE3_METRIC_KEYS,
    TABLE3_ROWS,
    TABLE3_TYPES,
    paper_row,
)
from tiktalk.report.plots import PAPER_COLOR, plot_histogram, plot_ours_vs_paper
from tiktalk.report.render import latex_escape, markdown_table
from tiktalk.report.tables import RowSpread, build_table3, load_metrics, plot_table3, table3_caption

PAPER_TXT = Path(__file__).parent / "data" / "tiktalk_table3.txt"  # the paper text around Table 3
NUMBER = r"\d+\.\d\d"


# ----------------------------------------------------------------------------- paper data


def test_table3_shape():
    assert set(TABLE3_METRIC_KEYS) <= set(METRIC_KEYS)
    assert len(TABLE3_ROWS) == 11 and TABLE3_ROWS[0] == "DialoGPT" and TABLE3_ROWS[-1] == "C3KG+text"
    assert all(list(v) == list(TABLE3_METRIC_KEYS) for v in TABLE3.values())
    assert ROW_TYPE["Maria+C3KG"] == "V+T+K baseline" and ROW_TYPE["Audio+text"] == "Maria ablations"
    assert paper_row("Maria")["cider"] == 26.19
    with pytest.raises(KeyError, match="Maria\\+C3KG"):
        paper_row("Maria-C3KG")


@pytest.mark.skipif(not PAPER_TXT.exists(), reason="paper text not available")
def test_table3_matches_paper_text():
    text = PAPER_TXT.read_text(encoding="utf-8")
    start = text.index("Type Methods BLEU-2 BLEU-4 Meteor Rouge-L CIDEr Dist-2 Dist-3")
    block = text[start:text.index("Table 4:", start)]
    header = block.splitlines()[0].split()[2:]
    assert tuple(header) == TABLE3_COLUMNS
    numeric_lines = [ln for ln in block.splitlines() if re.search(rf"(?:\s{NUMBER}){{7}}\s*$", ln)]
    assert len(numeric_lines) == len(TABLE3_ROWS)
    for line, row in zip(numeric_lines, TABLE3_ROWS):  # same rows, same order
        m = re.match(rf"^(.*?)(?:^|\s){re.escape(row)}((?:\s+{NUMBER}){{7}})\s*$", line)
        assert m, f"row {row!r} not found in paper line {line!r}"
        assert [float(v) for v in m.group(2).split()] == list(TABLE3[row].values()), row
        prefix = m.group(1).strip()
        if prefix:  # a type label is printed on the first row of its group
            assert TABLE3_TYPES[prefix][0] == row
    group_starts = {rows[0] for rows in TABLE3_TYPES.values()}
    labelled = {m for m in TABLE3_ROWS
                if any(re.match(rf"^{re.escape(t)}\s+{re.escape(m)}\s", ln)
                       for ln in numeric_lines for t in TABLE3_TYPES)}
    assert labelled == group_starts


# ----------------------------------------------------------------------------- tables


def _metrics(base: float, n: int = 100) -> dict:
    return {**{k: base + i / 1000 for i, k in enumerate(METRIC_KEYS)}, "n": n}


RUNS = {
    "maria_c3kg": _metrics(4.123),
    "blip2_img": _metrics(3.005),
    "my_model": _metrics(1.0),
    "dialogpt": _metrics(2.5),
}
LABELS = {"maria_c3kg": "Maria+C3KG", "blip2_img": "BLIP-2_Img", "dialogpt": "DialoGPT",
          "not_run": "Livebot"}


def _build(tmp_path, runs=RUNS, labels=LABELS, **kw):
    paths = tmp_path / "t3.csv", tmp_path / "t3.md", tmp_path / "t3.tex"
    frame = build_table3(runs, labels, *paths, **kw)
    return frame, paths


def test_csv(tmp_path):
    frame, (csv, _, _) = _build(tmp_path)
    lines = csv.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("source,type,baseline,paper_row,BLEU-2,BLEU-4,Meteor,Rouge-L,CIDEr,"
                               "Dist-2,Dist-3,n,note,BLEU-2_low,")
    assert lines[0].endswith(",Dist-3_sd,seeds")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    # ours in the paper's row order (unlabelled last), then the paper block for the labels
    assert list(table["source"]) == ["ours"] * 4 + ["paper"] * 3
    assert list(table["baseline"][:4]) == ["dialogpt", "blip2_img", "maria_c3kg", "my_model"]
    assert list(table["paper_row"]) == ["DialoGPT", "BLIP-2_Img", "Maria+C3KG", "",
                                        "DialoGPT", "BLIP-2_Img", "Maria+C3KG"]
    assert list(table["type"][:4]) == ["T baselines", "V+T baselines", "V+T+K baseline", ""]
    m = RUNS["maria_c3kg"]
    assert table.loc[2, "BLEU-2"] == f"{m['bleu_2']:.2f}" == "4.12"
    assert table.loc[2, "Dist-3"] == f"{m['dist_3']:.2f}" and table.loc[2, "n"] == "100"
    assert table.loc[6, "CIDEr"] == "26.95" and table.loc[6, "n"] == ""
    assert all(re.fullmatch(r"\d+\.\d\d", v) for c in TABLE3_COLUMNS for v in table[c])
    assert frame.loc[2, "BLEU-2"] == pytest.approx(m["bleu_2"])


def test_intervals_and_seed_spread(tmp_path):
    """A row's bootstrap interval (and its spread over seeds) in every format; the CSV has both
    bounds, Markdown and LaTeX ``value [low, high]`` (``value ± sd [low, high]`` with seeds)."""
    keys = TABLE3_METRIC_KEYS
    spread = {"maria_c3kg": RowSpread({k: 4.0 for k in keys}, {k: 4.5 for k in keys},
                                      {k: 0.125 for k in keys}, 3),
              "dialogpt": RowSpread({k: 2.25 for k in keys}, {k: 2.75 for k in keys})}
    _, (csv, md, tex) = _build(tmp_path, spread=spread)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False).set_index("baseline")
    assert table.loc["maria_c3kg", "BLEU-2_low"] == "4.00" and table.loc["maria_c3kg", "BLEU-2_high"] == "4.50"
    assert table.loc["maria_c3kg", "CIDEr_sd"] == "0.12" and table.loc["maria_c3kg", "seeds"] == "3"
    assert table.loc["dialogpt", "Dist-3_low"] == "2.25" and table.loc["dialogpt", "Dist-3_sd"] == ""
    assert table.loc["dialogpt", "seeds"] == "1" and table.loc["my_model", "BLEU-2_low"] == ""
    ours = _md_tables(md.read_text(encoding="utf-8"))[0]
    cells = {row[1]: row[3:] for row in ours[2:]}
    assert cells["maria_c3kg"][0] == "4.12 ± 0.12 [4.00, 4.50]"
    assert cells["dialogpt"][0] == "2.50 [2.25, 2.75]" and cells["my_model"][0] == "1.00"
    text = tex.read_text(encoding="utf-8")
    assert r"4.12 $\pm$ 0.12 [4.00, 4.50]" in text or r"\textbf{4.12} $\pm$ 0.12 [4.00, 4.50]" in text


def test_all_paper_rows(tmp_path):
    _, (csv, _, _) = _build(tmp_path, all_paper_rows=True)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert list(table.loc[table["source"] == "paper", "paper_row"]) == list(TABLE3_ROWS)


def _md_tables(text: str) -> list[list[list[str]]]:
    tables, cur = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]
            if cur is None:
                cur = []
                tables.append(cur)
            cur.append(cells)
        else:
            cur = None
    return tables


def test_markdown_is_a_table(tmp_path):
    _, (_, md, _) = _build(tmp_path, runs={**RUNS, "a|b": _metrics(1.0)})
    text = md.read_text(encoding="utf-8")
    ours, paper = _md_tables(text)
    assert "### Paper" in text and "reported" in text
    for table, first in ((ours, ["Type", "Baseline", "Paper row"]), (paper, ["Type", "Method"])):
        assert table[0] == first + list(TABLE3_COLUMNS)
        assert all(re.fullmatch(r"---:?", c) for c in table[1])
        assert all(len(row) == len(table[0]) for row in table)
    assert [r[1] for r in ours[2:]] == ["dialogpt", "blip2_img", "maria_c3kg", "my_model", "a\\|b"]
    assert paper[2][1:] == ["DialoGPT"] + [f"{v:.2f}" for v in TABLE3["DialoGPT"].values()]


def test_latex_escaping(tmp_path):
    _, (_, _, tex) = _build(tmp_path, runs={**RUNS, "x&y%_{z}": _metrics(1.0)})
    text = tex.read_text(encoding="utf-8")
    # rows carry the paper's labels (Maria+C3KG), not the runs' config keys (maria_c3kg)
    assert r"BLIP-2\_Img & " in text and r"Maria+C3KG & " in text and r"maria\_c3kg" not in text
    assert r"x\&y\%\_\{z\}" in text
    body = text[text.index(r"\toprule"):text.index(r"\bottomrule")]
    assert not re.search(r"(?<!\\)[_&%#]", body.replace(" & ", " "))
    rows = [ln for ln in body.splitlines() if ln.endswith(r"\\") and "multicolumn" not in ln]
    assert len(rows) == 1 + 5 + 3  # header + ours + paper
    assert all(ln.count(" & ") == 1 + len(TABLE3_COLUMNS) for ln in rows)
    assert r"\textit{Paper (reported" in text and text.count("{") == text.count("}")
    # the best value of every column is bold, in our block and in the paper's
    assert body.count(r"\textbf{") >= 2 * len(TABLE3_COLUMNS)
    assert latex_escape("a~b^c\\") == r"a\textasciitilde{}b\textasciicircum{}c\textbackslash{}"


def test_latex_caption_is_escaped(tmp_path):
    """The caption is plain text: its '%' (the interval's level) must not comment out the rest
    of the line, and a missing row's note is escaped too."""
    caption = table3_caption("test", "demo", resamples=200, seeds=2)
    assert "95%" in caption
    _, (_, md, tex) = _build(tmp_path, caption=caption, missing={"livebot": "out of memory_1"})
    text = tex.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith(r"\caption{"))
    assert r"95\% bootstrap" in line and line.endswith("}")
    assert not re.search(r"(?<!\\)[%_&#]", line)
    assert r"livebot: out of memory\_1." in line
    assert md.read_text(encoding="utf-8").startswith(caption + "\n")   # Markdown: as written


def test_markdown_table_escapes_cells_and_checks_its_shape():
    text = markdown_table(["a|b", "n"], [["x|y\nz", 1]], "lr")
    assert text.splitlines() == [r"| a\|b | n |", "|---|---:|", r"| x\|y z | 1 |"]
    with pytest.raises(ValueError, match="one 'l' or 'r' per column"):
        markdown_table(["a", "b"], [], "l")
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        markdown_table(["a", "b"], [["x"]], "ll")


def test_missing_metric_names_the_baseline(tmp_path):
    bad = {k: v for k, v in _metrics(1.0).items() if k != "cider"}
    with pytest.raises(KeyError, match="baseline 'livebot'.*cider"):
        _build(tmp_path, runs={**RUNS, "livebot": bad})
    assert not (tmp_path / "t3.csv").exists()
    with pytest.raises(ValueError, match="baseline 'livebot'.*bleu_2"):
        _build(tmp_path, runs={"livebot": {**_metrics(1.0), "bleu_2": "high"}})
    with pytest.raises(KeyError, match="baseline 'livebot'"):
        plot_table3({"livebot": bad}, {}, tmp_path / "p.png")


def test_load_metrics(tmp_path):
    write_json(tmp_path / "m" / "a" / "test.json", RUNS["maria_c3kg"])
    assert load_metrics({"a": tmp_path / "m" / "a" / "test.json"}) == {"a": RUNS["maria_c3kg"]}


# ----------------------------------------------------------------------------- figures


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


def test_plot_table3_png(tmp_path):
    out = tmp_path / "fig" / "table3.png"
    plot_table3(RUNS, LABELS, out)
    w, h = _png_size(out)
    assert w > 400 and h > 200
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[:2] == (h, w) and img.std() > 0  # something was drawn


def _share_of_colour(path: Path, hex_colour: str) -> float:
    """Share of the image's pixels in exactly ``hex_colour`` (a bar's fill)."""
    import matplotlib.image
    import numpy as np

    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    img = matplotlib.image.imread(path)[..., :3]
    return float((np.abs(img - rgb).max(axis=-1) < 1 / 255).mean())


def test_plot_ours_vs_paper_draws_paper_bars_only_when_the_paper_has_values(tmp_path):
    both, ours_only = tmp_path / "both.png", tmp_path / "ours.png"
    plot_ours_vs_paper(["a", "b", "c"], [10.0, None, 30.0], [20.0, 5.0, None], both,
                       title="t", ylabel="%")
    plot_ours_vs_paper(["a", "b", "c"], [10.0, None, 30.0], [None, None, None], ours_only,
                       title="t", ylabel="%", rotation=30)
    assert min(_png_size(both)) > 100
    assert _share_of_colour(both, PAPER_COLOR) > 0.02        # the bars of 20 and 5
    assert _share_of_colour(ours_only, PAPER_COLOR) < 2e-4   # no bar, no legend swatch


def test_plot_histogram(tmp_path):
    values = [1, 2, 2, 3, 50, 50, 49]
    summary = plot_histogram(values, tmp_path / "h.png", title="frames per video",
                             xlabel="frames", integer_bins=True)
    assert summary == {"n": 7, "mean": pytest.approx(157 / 7), "median": 3.0, "min": 1.0, "max": 50.0}
    _png_size(tmp_path / "h.png")
    assert plot_histogram([], tmp_path / "e.png")["n"] == 0
    _png_size(tmp_path / "e.png")
    with pytest.raises(ValueError, match="NaN"):
        plot_histogram([1.0, float("nan")], tmp_path / "n.png")
