"""What every scenario uses: a result row, medians, a gunicorn server on loopback, the
wrk load generator, and the BENCHMARKS.md table."""

from __future__ import annotations

import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
BASE_URL = f"http://127.0.0.1:{PORT}"
WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))


@dataclass
class Row:
    """One line of the table. `ratio` is ours ÷ baseline for times and baseline ÷ ours for
    throughputs, so lower is always better."""

    scenario: str
    data: str
    ours: str
    baseline: str
    ratio: float
    budget: str
    holds: bool
    notes: list[str] = field(default_factory=list)
    measured: str = ""  # when, and by which command
    commit: str = ""  # the commit measured; "" when the code measured was not committed
    code: list[str] = field(default_factory=list)  # the paths the scenario exercises

    def stale(self, root: Path = ROOT) -> bool:
        """Whether the code this row exercises differs now from the commit it was measured
        on (committed since, or changed in the working tree); a row measured on code that
        was not committed is stale from the start."""
        if not self.commit or not self.code:
            return True
        changed = subprocess.run(
            ["git", "diff", "--quiet", self.commit, "--", *self.code], cwd=root, check=False
        )
        return changed.returncode != 0 or _untracked(self.code, root)

    def verdict(self, root: Path = ROOT) -> str:
        if self.stale(root):
            return "stale"
        return "yes" if self.holds else "no"


def failed_row(scenario: str, failure: Exception) -> Row:
    """The row of a scenario that stopped with an error: it holds nothing, and says why;
    the other scenarios of the run go on."""
    return Row(scenario=f"{scenario} (did not finish)", data="—", ours="—", baseline="—",
               ratio=0.0, budget="—", holds=False,
               notes=[f"stopped with {type(failure).__name__}: {str(failure)[:300]}"])  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def say(text: str) -> None:
    print(text, flush=True)


# --- gunicorn ------------------------------------------------------------------------------


@contextmanager
def web_server(env: dict[str, str]) -> Iterator[str]:
    """gunicorn with the bench settings (production settings on plain HTTP) on loopback."""
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{PORT}",
        "--workers",
        str(WORKERS),
        "--log-level",
        "warning",
    ]
    log = open(ROOT / "var/bench-gunicorn.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{BASE_URL}/healthz/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start: see var/bench-gunicorn.log")
            time.sleep(0.3)
        yield BASE_URL
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


# --- wrk -----------------------------------------------------------------------------------


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad_responses: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def wrk(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    lua: str | None = None,
    connections: int = 8,
    seconds: int = 10,
) -> Load:
    """Runs wrk (2 threads, `connections` keep-alive connections) and reads its report. Any
    non-2xx/3xx answer or socket error fails the run: a fast error page measures nothing."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    script = None
    if lua:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(lua)
        script.close()
        command += ["-s", script.name]
    command.append(url)
    try:
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        if script:
            os.unlink(script.name)
    bad = (
        int(re.search(r"Non-2xx or 3xx responses: (\d+)", output)[1]) if "Non-2xx" in output else 0
    )
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if bad or socket_errors:
        raise RuntimeError(f"wrk saw errors on {url}:\n{output}")
    return Load(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        p50_ms=_ms(re.search(r"\s50%\s+(\S+)", output)[1]),
        p99_ms=_ms(re.search(r"\s99%\s+(\S+)", output)[1]),
        requests=int(re.search(r"(\d+) requests in", output)[1]),
        bad_responses=bad,
    )


def loads_compared(
    ours: Callable[[], Load], baseline: Callable[[], Load], rounds: int
) -> tuple[list[Load], list[Load]]:
    """Alternates ours and the baseline, so drift on a shared machine hits both alike. Each
    runs once unmeasured first: worker start-up, template compilation and a cold cache
    would otherwise land in the first round's p99."""
    ours()
    baseline()
    mine, theirs = [], []
    for _ in range(rounds):
        mine.append(ours())
        theirs.append(baseline())
    return mine, theirs


# --- Like with like ------------------------------------------------------------------------

# What may differ between two answers of the same page: the CSRF token (masked afresh for
# every answer) and the CSP nonce (new for every answer).
_PER_ANSWER = [
    (re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*'), r"\1…"),
    (re.compile(r'("X-CSRFToken": ")[^"]*'), r"\1…"),
    (re.compile(r'(nonce=")[^"]*'), r"\1…"),
    # The ticket page's presence poll names the second it was drawn in.
    (re.compile(r"(/presence/\?since=)\d+"), r"\1…"),
]


def served_at(path: str | Callable[..., str]):
    """A bare view answering as if at the product's own address (`path`, or a function of
    the view's arguments giving it): the links and menus a page builds from its address
    (the language menu's return path, the sidebar's current item) come out the same."""
    from functools import wraps

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            from django.urls import resolve

            address = path(*args, **kwargs) if callable(path) else path
            request.path = request.path_info = address
            request.resolver_match = resolve(address)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def page_text(base: str, path: str, headers: dict[str, str] | None = None) -> str:
    """The page at `path`, with what changes on every answer blanked out."""
    request = urllib.request.Request(base + path, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 200 or not answer.url.endswith(path):
            raise RuntimeError(f"{path} answered {answer.status} at {answer.url}")
        text = answer.read().decode()
    for pattern, blank in _PER_ANSWER:
        text = pattern.sub(blank, text)
    return text


def same_page(base: str, ours: str, bare: str, headers: dict[str, str] | None = None) -> int:
    """Checks the bare view answers the very page ours does (same bytes but for the CSRF
    token and the CSP nonce): a baseline that renders less would flatter us. Returns the
    page's size in bytes."""
    mine, theirs = page_text(base, ours, headers), page_text(base, bare, headers)
    if mine != theirs:
        import difflib

        diff = "\n".join(
            list(
                difflib.unified_diff(
                    mine.splitlines(), theirs.splitlines(), ours, bare, lineterm="", n=1
                )
            )[:40]
        )
        raise RuntimeError(f"{bare} does not render the page {ours} does:\n{diff}")
    return len(mine.encode())


# --- The table -----------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {system}"


def table(rows: list[Row], root: Path = ROOT) -> str:
    lines = [
        "| scenario | data | ours | baseline | ratio | budget | holds | commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.data} | {row.ours} | {row.baseline} | "
            f"{row.ratio:.2f} | {row.budget} | {row.verdict(root)} | {row.commit[:10] or '—'} |"
        )
    return "\n".join(lines)


def commit_of(paths: list[str], root: Path = ROOT) -> str:
    """HEAD, if `paths` hold no change that isn't committed; else "" (a figure measured on
    uncommitted code belongs to no commit)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", *paths], cwd=root,
                           check=False).returncode  # fmt: skip
    return "" if dirty or _untracked(paths, root) else head


def _untracked(paths: list[str], root: Path) -> bool:
    return bool(
        subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", "--", *paths],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip


def command() -> str:
    args = " ".join(sys.argv[1:])
    return "make bench" + (f" BENCH_ARGS={shlex.quote(args)}" if args else "")


def report(rows: list[Row], *, dataset: str, postgres: str, root: Path = ROOT) -> str:
    """The table, then how each row was measured. Rows of scenarios a run skipped (`--only`)
    are kept from the run that last measured them, and say so; a row whose code changed
    since the commit it was measured on reads "stale", not "holds"."""
    runs = sorted({row.measured for row in rows})
    notes = [f"- **{row.scenario}**: {note}" for row in rows for note in row.notes]
    if len(runs) == 1:
        measured = [f"Measured {runs[0]}."]
    else:
        measured = ["Measured in more than one run:"] + [
            f"- {run}: {', '.join(row.scenario for row in rows if row.measured == run)}"
            for run in runs
        ]
    return "\n".join(
        [
            *measured,
            "",
            f"- Machine: {machine()}; {postgres}.",
            f"- Data: {dataset}",
            "",
            table(rows, root),
            "",
            *notes,
        ]
    )
