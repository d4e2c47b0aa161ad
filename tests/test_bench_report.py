"""The bench's report: a run of some scenarios keeps the last figures of the others and
says which run measured which."""

from __future__ import annotations

from bench import __main__ as bench_main
from bench.harness import Row, report, table


def _row(name: str, ratio: float, measured: str) -> Row:
    return Row(
        scenario=name,
        data="1M",
        ours="1 s",
        baseline="1 s",
        ratio=ratio,
        budget="≤ 3",
        holds=ratio <= 3,
        notes=[f"{name} note"],
        measured=measured,
    )


def test_a_partial_run_replaces_only_its_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_main, "ROOT", tmp_path)
    (tmp_path / "bench").mkdir()
    first = bench_main._rows_merged([_row("a", 1.0, "run 1"), _row("b", 4.0, "run 1")])
    assert [r.scenario for r in first] == ["a", "b"]

    merged = bench_main._rows_merged([_row("b", 2.0, "run 2")])
    assert [(r.scenario, r.ratio, r.measured) for r in merged] == [
        ("a", 1.0, "run 1"),
        ("b", 2.0, "run 2"),
    ]
    text = report(merged, dataset="1M customers.", postgres="PostgreSQL 15")
    assert "Measured in more than one run:" in text
    assert "- run 1: a" in text
    assert "- run 2: b" in text
    assert table(merged) in text
    assert "| b | 1M | 1 s | 1 s | 2.00 | ≤ 3 | yes |" in text
