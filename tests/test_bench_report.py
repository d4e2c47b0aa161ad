"""The bench's report: a run of some scenarios keeps the last figures of the others and
says which run measured which, and a row whose code changed since it was measured reads
"stale", not "holds"."""

from __future__ import annotations

import subprocess

import pytest

from bench import __main__ as bench_main
from bench.harness import Row, commit_of, report, table


def _row(name: str, ratio: float, measured: str, **more) -> Row:
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
        **more,
    )


def _git(root, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip


@pytest.fixture
def repository(tmp_path):
    """A repository with a scenario's code (jobs/tiers.py) and unrelated code (docs.md)."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "bench@example.test")
    _git(tmp_path, "config", "user.name", "Bench")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "tiers.py").write_text("def recalculate(): ...\n")
    (tmp_path / "docs.md").write_text("notes\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


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


def test_a_full_run_keeps_no_row_of_an_earlier_one(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_main, "ROOT", tmp_path)
    (tmp_path / "bench").mkdir()
    bench_main._rows_merged([_row("a", 1.0, "run 1"), _row("old name", 1.0, "run 1")])
    merged = bench_main._rows_merged([_row("a", 2.0, "run 2")], full=True)
    assert [(r.scenario, r.measured) for r in merged] == [("a", "run 2")]


def test_a_row_holds_until_the_code_it_measured_changes(repository):
    commit = commit_of(["jobs"], repository)
    assert commit == _git(repository, "rev-parse", "HEAD")
    row = _row("tiers", 2.0, "run 1", commit=commit, code=["jobs"])
    assert row.verdict(repository) == "yes"
    assert "| tiers | 1M | 1 s | 1 s | 2.00 | ≤ 3 | yes |" in table([row], repository)

    # Other code changing leaves the figure standing.
    (repository / "docs.md").write_text("more notes\n")
    _git(repository, "commit", "-qam", "docs")
    assert row.verdict(repository) == "yes"

    # The scenario's code changing, even before it is committed, makes the figure stale.
    (repository / "jobs" / "tiers.py").write_text("def recalculate(): return 1\n")
    assert row.verdict(repository) == "stale"
    _git(repository, "commit", "-qam", "faster tiers")
    assert row.verdict(repository) == "stale"
    text = report([row], dataset="1M customers.", postgres="PostgreSQL 15", root=repository)
    assert "| tiers | 1M | 1 s | 1 s | 2.00 | ≤ 3 | stale |" in text

    # A new file in the scenario's code counts as a change too.
    fresh = _row("tiers", 2.0, "run 2", commit=commit_of(["jobs"], repository), code=["jobs"])
    assert fresh.verdict(repository) == "yes"
    (repository / "jobs" / "expiry.py").write_text("")
    assert fresh.verdict(repository) == "stale"


def test_a_failing_row_reads_no_and_uncommitted_code_belongs_to_no_commit(repository):
    (repository / "jobs" / "tiers.py").write_text("def recalculate(): return 2\n")
    assert commit_of(["jobs"], repository) == ""
    assert commit_of(["docs.md"], repository) != ""
    measured_dirty = _row("tiers", 2.0, "run 1", commit="", code=["jobs"])
    assert measured_dirty.verdict(repository) == "stale"
    _git(repository, "commit", "-qam", "tiers")
    failing = _row("tiers", 4.0, "run 2", commit=commit_of(["jobs"], repository), code=["jobs"])
    assert failing.verdict(repository) == "no"
