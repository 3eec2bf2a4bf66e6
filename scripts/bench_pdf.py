"""`make bench`: how fast the due-diligence summary (尽调摘要) renders, and in how much memory.

Builds a fresh demo database in a temporary instance folder (`flask db upgrade`, `flask crm
demo`, in a subprocess, so this process stays the size of a web worker), picks the demo's
richest dossier (a passed evaluation and the most follow-ups), renders it once to start the
helper process (the cold render), then --runs more times in that helper — exactly the path a
download takes — and prints one table with the targets of issue #4 next to the figures.
With --json it prints the figures as one JSON object instead (no table): `make bench` runs it
so, from scripts/bench_web.py, which puts them into its single table.

The target is on wall time, which other work on the machine stretches; the helper's CPU time
per render and the load average are printed next to it to tell a slow render from a busy
machine.

    .venv/bin/python scripts/bench_pdf.py [--runs 10] [--json]

The database is always a SQLite demo: the timed part, HTML to PDF in the helper, reads none.
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEDIAN_TARGET_S = 0.5
WORKER_TARGET_MB = 250
PAGES_TARGET = (3, 5)


def build_demo(instance: Path, env: dict[str, str]) -> None:
    """Migrate and load the demo into the temporary instance, in a separate process."""
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for args in (["db", "upgrade"], ["crm", "demo"]):
        done = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
            [*flask, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"bench: `flask {' '.join(args)}` failed in {instance}")


def richest_project():
    """The project with a passed latest evaluation and the most follow-ups."""
    import sqlalchemy as sa

    from crm.evaluation.models import Evaluation, EvaluationState
    from crm.extensions import db
    from crm.projects.models import FollowUp, Project

    latest = (
        sa.select(sa.func.max(Evaluation.id))
        .where(Evaluation.project_id == Project.id)
        .correlate(Project)
        .scalar_subquery()
    )
    followups = (
        sa.select(sa.func.count(FollowUp.id))
        .where(FollowUp.project_id == Project.id)
        .correlate(Project)
        .scalar_subquery()
    )
    row = db.session.execute(
        sa.select(Project, followups.label("followups"))
        .join(Evaluation, Evaluation.id == latest)
        .where(Evaluation.state == EvaluationState.PASSED, Project.is_deleted.is_(False))
        .order_by(followups.desc(), Project.id)
        .limit(1)
    ).first()
    if row is None:
        raise SystemExit("bench: the demo has no project with a passed evaluation")
    return row


def page_count(pdf: bytes, folder: Path) -> int | None:
    if not shutil.which("pdfinfo"):
        return None
    path = folder / "dossier.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(  # noqa: S603 - poppler's pdfinfo on our own temporary file
        ["pdfinfo", str(path)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    return None


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def measure(runs: int) -> dict:
    """Build the demo, render its richest dossier once cold then `runs` times: the figures."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        instance = Path(tmp) / "instance"
        instance.mkdir()
        env = {
            **os.environ,
            "CRM_INSTANCE_PATH": str(instance),
            "DATABASE_URL": f"sqlite:///{instance / 'crm.sqlite3'}",
            "CRM_UPLOAD_FOLDER": str(instance / "uploads"),
        }
        env.pop("CRM_ENV", None)
        started = time.perf_counter()
        build_demo(instance, env)
        demo_seconds = time.perf_counter() - started
        os.environ.update({k: env[k] for k in ("CRM_INSTANCE_PATH", "DATABASE_URL")})
        os.environ["CRM_UPLOAD_FOLDER"] = env["CRM_UPLOAD_FOLDER"]
        sys.path.insert(0, str(ROOT))

        import sqlalchemy as sa
        import weasyprint

        from crm import create_app
        from crm.auth.models import Role, User
        from crm.extensions import db
        from crm.reports.dossier import build_dossier
        from crm.reports.renderer import (
            helper_cpu_seconds,
            helper_peak_memory_mb,
            peak_memory_mb,
            render_pdf,
        )

        app = create_app()
        with app.app_context():
            project, followups = richest_project()
            admin = db.session.scalar(
                sa.select(User).where(User.role == Role.ADMIN).order_by(User.id).limit(1)
            )
            html = build_dossier(project, admin).html
            label = f"#{project.id} {project.name} ({followups} follow-ups, passed evaluation)"
            db.session.remove()

        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        pdf = render_pdf(html, in_subprocess=True)
        first = time.perf_counter() - started
        times, cpu = [], []
        for _ in range(runs):
            cpu_before = helper_cpu_seconds()
            started = time.perf_counter()
            render_pdf(html, in_subprocess=True)
            times.append(time.perf_counter() - started)
            cpu.append(helper_cpu_seconds() - cpu_before)
        load_after = os.getloadavg()[0]
        helper_mb = helper_peak_memory_mb()
        worker_mb = peak_memory_mb()
        pages = page_count(pdf, Path(tmp))

    return {
        "dossier": label,
        "weasyprint": weasyprint.__version__,
        "pdf_kb": len(pdf) / 1024,
        "demo_seconds": demo_seconds,
        "harfbuzz_subset": ctypes.util.find_library("harfbuzz-subset") is not None,
        "load_average": [load_before, load_after],
        "pages": pages,
        "runs": runs,
        "times": times,
        "median": statistics.median(times),
        "p90": p90(times),
        "cpu_median": statistics.median(cpu),
        "first": first,
        "helper_mb": helper_mb,
        "worker_mb": worker_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed renders after the first")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    m = measure(options.runs)
    if options.json:
        print(json.dumps(m, ensure_ascii=False))
        return

    low, high = PAGES_TARGET
    pages, median, worker_mb = m["pages"], m["median"], m["worker_mb"]
    rows = [
        ("pages", f"{pages}" if pages else "? (no pdfinfo)", f"{low}–{high}",
         verdict(pages is not None and low <= pages <= high)),
        (f"render median of {m['runs']} (s)", f"{median:.3f}", f"≤ {MEDIAN_TARGET_S}",
         verdict(median <= MEDIAN_TARGET_S)),
        (f"render p90 of {m['runs']} (s)", f"{m['p90']:.3f}", "", ""),
        ("render CPU median, helper (s)", f"{m['cpu_median']:.3f}", "", ""),
        ("first render, cold helper (s)", f"{m['first']:.3f}", "", ""),
        ("helper process peak (MB)", f"{m['helper_mb']:.0f}", "(separate process)", ""),
        ("web worker peak (MB)", f"{worker_mb:.0f}", f"< {WORKER_TARGET_MB}",
         verdict(worker_mb < WORKER_TARGET_MB)),
    ]  # fmt: skip
    load_before, load_after = m["load_average"]
    print(f"尽调摘要 PDF: {m['dossier']}")
    print(
        f"WeasyPrint {m['weasyprint']}, {m['pdf_kb']:.0f} KB PDF, "
        f"demo built in {m['demo_seconds']:.1f} s, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} → {load_after:.1f}"
    )
    if not m["harfbuzz_subset"]:
        print("WARNING: libharfbuzz-subset0 is missing: renders take seconds (`make setup`)")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  {'target':<18}  result")
    for name, value, target, result in rows:
        print(f"{name:<{width}}  {value:>10}  {target:<18}  {result}")


if __name__ == "__main__":
    main()
