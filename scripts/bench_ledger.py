"""Benchmark of the ledger (项目台账): import and export of N projects.

    .venv/bin/python scripts/bench_ledger.py            # 5,000 and 10,000 rows on SQLite
    .venv/bin/python scripts/bench_ledger.py 5000 --runs 3
    CRM_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \
        .venv/bin/python scripts/bench_ledger.py        # on PostgreSQL (the database is reset)

Each run of each size starts from an empty, migrated database with the catalogues seeded (a
new SQLite file, or the PostgreSQL database reset): build an .xlsx of N new projects (each
with its own company), read it, check it (the preview), write it (the confirmation, one
commit), import the same file again (every row unchanged), export it. With --runs N each
step's figure is the median of N such runs. With --json the figures are printed as JSON (a
list, one object per size) instead of the table: `make bench` runs `bench_ledger.py 5000
--runs 3 --json` from scripts/bench_web.py, which puts the import's median into its single
table (the export of 10,000 rows is timed there, over HTTP, against the 100,000-project
database; bench_web gives this script a PostgreSQL database of its own, `<name>_ledger`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from flask_migrate import upgrade
from openpyxl import Workbook

from config import TestingConfig
from crm import create_app
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Channel, Cluster
from crm.catalog.seed import seed_catalogues
from crm.companies.credit_code import check_character
from crm.core import local_today
from crm.extensions import db
from crm.ledger.apply import apply_import
from crm.ledger.columns import COLUMNS
from crm.ledger.export import export_workbook
from crm.ledger.plan import plan_import
from crm.ledger.reading import read_workbook
from crm.projects.filters import ProjectFilter
from crm.projects.models import Project

NO_PASSWORD = "!"  # the bench users never sign in
IMPORT = "upload to imported (read+preview+confirm)"
WRITE_LOCK = "confirm: writes (SQLite write lock held)"


def workbook(n: int, carriers, clusters, channels) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("项目台账")
    headers = [c.header for c in COLUMNS if c.imported and c.key != "id"]
    ws.append(headers)
    keys = [c.key for c in COLUMNS if c.imported and c.key != "id"]
    for i in range(n):
        first17 = f"91341600{i + 1:09d}"
        values = {
            "name": f"基准测试项目{i + 1:05d}",
            "company_name": f"基准测试企业{i + 1:05d}有限公司",
            "credit_code": first17 + check_character(first17),
            "origin": "省外",
            "carrier": carriers[i % len(carriers)],
            "cluster": clusters[i % len(clusters)],
            "channel": channels[i % len(channels)],
            "officer": "bench_officer",
            "is_key": "否",
            "stage": "招引" if i % 2 else "谋划",
            "total_investment": 10000 + i,
            "fixed_asset_investment": 8000,
            "land_area": 50.5,
            "expected_jobs": 100,
            "planned_signed_on": "2027-03-01",
            "description": "基准测试",
        }
        ws.append([values.get(k) for k in keys])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def run(n: int, url: str) -> tuple[dict[str, float], int, str]:
    """One run on a fresh database: the seconds of each step, the .xlsx's size, the dialect."""

    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = url

    app = create_app(Config)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
        upgrade()
        seed_catalogues()
        carrier = db.session.scalar(sa.select(Carrier).order_by(Carrier.id))
        admin = User(
            username="bench_admin", display_name="基准", password_hash=NO_PASSWORD, role=Role.ADMIN
        )
        db.session.add(admin)
        for c in db.session.scalars(sa.select(Carrier)):
            db.session.add(
                User(
                    username="bench_officer" if c.id == carrier.id else f"bench_officer_{c.id}",
                    display_name=f"专员{c.id}",
                    password_hash=NO_PASSWORD,
                    role=Role.OFFICER,
                    carrier=c,
                )
            )
        db.session.commit()
        data = workbook(
            n,
            [carrier.name],
            [c.name for c in db.session.scalars(sa.select(Cluster))],
            [c.name for c in db.session.scalars(sa.select(Channel))],
        )

        timings = {}
        started = time.perf_counter()
        rows = read_workbook(io.BytesIO(data))
        timings["read"] = time.perf_counter() - started
        started = time.perf_counter()
        plan = plan_import(admin, rows)
        timings["preview"] = time.perf_counter() - started
        assert plan.ok, plan.errors[:5]
        db.session.rollback()
        started = time.perf_counter()
        plan = plan_import(admin, rows)
        writing = time.perf_counter()
        result = apply_import(admin, plan, "bench.xlsx")
        db.session.commit()
        timings["confirm (check again + write)"] = time.perf_counter() - started
        # Only the writes hold SQLite's write lock (the confirmation plans without it).
        timings[WRITE_LOCK] = time.perf_counter() - writing
        assert result.created == n, result
        started = time.perf_counter()
        again = plan_import(admin, read_workbook(io.BytesIO(data)))
        timings["re-import (all unchanged)"] = time.perf_counter() - started
        assert again.count("unchanged") == n
        db.session.rollback()
        started = time.perf_counter()
        _xlsx, count = export_workbook(admin, ProjectFilter(), local_today(), 30)
        timings["export"] = time.perf_counter() - started
        db.session.rollback()
        assert count == n == db.session.scalar(sa.select(sa.func.count(Project.id)))
        timings[IMPORT] = (
            timings["read"] + timings["preview"] + timings["confirm (check again + write)"]
        )
        dialect = db.engine.dialect.name
        db.session.remove()
        db.engine.dispose()
    return timings, len(data), dialect


def measure(n: int, runs: int) -> dict:
    """`runs` runs of `n` rows, each on a fresh database: every step's seconds per run."""
    url = os.environ.get("CRM_BENCH_DATABASE_URL")
    per_step: dict[str, list[float]] = {}
    for _ in range(runs):
        if url:
            timings, size, dialect = run(n, url)
        else:
            with tempfile.TemporaryDirectory() as folder:
                timings, size, dialect = run(n, f"sqlite:///{folder}/bench.sqlite3")
        for step, seconds in timings.items():
            per_step.setdefault(step, []).append(seconds)
    return {
        "rows": n,
        "runs": runs,
        "backend": dialect,
        "xlsx_mb": size / 1e6,
        "seconds": per_step,
        "median": {step: statistics.median(values) for step, values in per_step.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, help="rows to import (5000 10000)")
    parser.add_argument("--runs", type=int, default=1, help="fresh databases per size (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    results = [measure(n, options.runs) for n in options.sizes or [5000, 10000]]
    if options.json:
        print(json.dumps(results))
        return
    for r in results:
        runs = f", median of {r['runs']} runs" if r["runs"] > 1 else ""
        print(f"{r['backend']}, {r['rows']} rows ({r['xlsx_mb']:.1f} MB){runs}:")
        for step, median in r["median"].items():
            each = ""
            if r["runs"] > 1:
                each = "  (" + ", ".join(f"{s:.2f}" for s in r["seconds"][step]) + ")"
            print(f"  {step:41s} {median:6.2f} s{each}")


if __name__ == "__main__":
    main()
