"""`flask --app wsgi crm ...`: user creation, unlocking and passwords, the demo data, backup
and restore, the file store's clean-up, the background jobs' worker."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from crm.auth.models import Role
from crm.catalog.models import Carrier, Cluster, Department
from crm.core import ServiceError
from crm.extensions import db

crm_cli = AppGroup("crm", help="双招双引 CRM 管理命令")

ROLE_NAMES = {
    "admin": Role.ADMIN,
    "officer": Role.OFFICER,
    "taskforce": Role.TASKFORCE,
    "leader": Role.LEADER,
    "department": Role.DEPARTMENT,
}


@crm_cli.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(sorted(ROLE_NAMES)), required=True)
@click.option("--carrier", help="载体名称（招商专员必填）")
@click.option("--cluster", help="产业集群名称（产业专班必填）")
@click.option("--department", help="部门名称（部门用户必填）")
@click.option("--name", "display_name", default="", help="显示的姓名")
def create_user_command(username, role, carrier, cluster, department, display_name):
    """Create a user; the password comes from CRM_PASSWORD or a prompt."""
    from crm.auth.services import create_user

    carrier_obj = cluster_obj = department_obj = None
    if carrier:
        carrier_obj = db.session.scalar(sa.select(Carrier).where(Carrier.name == carrier))
        if carrier_obj is None:
            raise click.BadParameter(f"没有名为“{carrier}”的载体", param_hint="--carrier")
    if cluster:
        cluster_obj = db.session.scalar(sa.select(Cluster).where(Cluster.name == cluster))
        if cluster_obj is None:
            raise click.BadParameter(f"没有名为“{cluster}”的产业集群", param_hint="--cluster")
    if department:
        department_obj = db.session.scalar(
            sa.select(Department).where(Department.name == department.strip())
        )
        if department_obj is None:
            raise click.BadParameter(f"没有名为“{department}”的部门", param_hint="--department")
    password = os.environ.get("CRM_PASSWORD") or click.prompt(
        "密码", hide_input=True, confirmation_prompt=True
    )
    try:
        user = create_user(
            None,
            username=username,
            display_name=display_name or username,
            password=password,
            role=ROLE_NAMES[role],
            carrier=carrier_obj,
            cluster=cluster_obj,
            department=department_obj,
        )
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException("；".join(exc.errors.values()) or exc.message) from exc
    db.session.commit()
    click.echo(f"已创建用户 {user.username}（{user.role.label}）")


def _user_named(username: str):
    from crm.auth.models import User

    user = db.session.scalar(sa.select(User).where(User.username == username.strip()))
    if user is None:
        raise click.ClickException(f"没有用户名为“{username}”的用户")
    return user


@crm_cli.command("unlock-user")
@click.argument("username")
def unlock_user_command(username):
    """Lift the user's sign-in lock and forget the failures counted against it (audited)."""
    from crm.auth.signin import unlock_user

    user = _user_named(username)
    changes = unlock_user(None, user)
    db.session.commit()
    if changes:
        click.echo(f"已解除 {user.username} 的登录锁定")
    else:
        click.echo(f"{user.username} 未被锁定，也没有登录失败记录；已记入审计日志")


@crm_cli.command("set-password")
@click.argument("username")
@click.option("--keep", is_flag=True, help="不要求用户下次登录时修改密码")
def set_password_command(username, keep):
    """Set a user's password (asked twice, hidden). The password rules apply; the user must
    change it at the next sign-in unless --keep; the user's sessions end (audited)."""
    from crm.auth.services import set_password

    user = _user_named(username)
    password = click.prompt("新密码", hide_input=True, confirmation_prompt="再次输入新密码")
    try:
        set_password(None, user, password, must_change=not keep)
    except ServiceError as exc:  # refused before anything changed
        raise click.ClickException("；".join(exc.errors.values()) or exc.message) from exc
    db.session.commit()
    then = "，该用户下次登录时须修改密码" if not keep else ""
    click.echo(f"已为 {user.username} 设置新密码{then}；其已登录的会话均已失效")


@crm_cli.command("seed")
def seed_command():
    """Load the catalogues (载体, clusters and chains, channels, 终止 reasons) and the default
    evaluation checklist; idempotent. A production install runs this instead of `demo`."""
    from crm.catalog.seed import seed_catalogues
    from crm.evaluation.seed import seed_default_template

    added = seed_catalogues()
    template_added = seed_default_template()
    db.session.commit()
    click.echo("基础目录已载入。" if added else "基础目录已是最新，未作改动。")
    if template_added:
        click.echo("已创建默认评估清单。")


@crm_cli.command("demo")
def demo_command():
    """Load the demo data (idempotent) and print the demo accounts."""
    from crm.devdata.demo import DEMO_PASSWORD, load_demo

    created = load_demo()
    db.session.commit()
    click.echo("演示数据已载入。" if created else "演示数据已存在，未重复载入。")
    click.echo(f"演示账号（密码均为 {DEMO_PASSWORD}）：")
    from crm.devdata.demo import DEMO_USERS

    for username, display_name, role, scope in DEMO_USERS:
        click.echo(f"  {username:<14} {role.label:<5} {scope or '':<10} {display_name}")


@crm_cli.command("generate")
@click.option("--projects", "count", type=click.IntRange(1), required=True, help="项目数")
@click.option("--seed", type=int, default=1, show_default=True, help="随机种子（同种子同数据）")
@click.option("--followups", type=click.IntRange(0), default=10, show_default=True,
              help="每个项目的平均跟踪服务条数")  # fmt: skip
@click.option("--analyze/--no-analyze", default=True, show_default=True,
              help="PostgreSQL：生成后执行 VACUUM ANALYZE")  # fmt: skip
def generate_command(count, seed, followups, analyze):
    """Fill the database with synthetic projects (bulk inserts; for benchmarks and trials)."""
    import time

    from crm.devdata.generate import GENERATED_PASSWORD, generate

    started = time.monotonic()

    def progress(done):
        click.echo(f"  {done}/{count} 个项目（{time.monotonic() - started:.0f} 秒）")

    counts = generate(count, seed=seed, followups=followups, progress=progress, analyze=analyze)
    click.echo("已生成：" + "，".join(f"{k} {v}" for k, v in counts.items()))
    click.echo(
        f"生成的账号（gen_leader、gen_admin、gen_officer_*、gen_taskforce_*）密码为 {GENERATED_PASSWORD}"
    )


# ---- backups ---------------------------------------------------------------------------------

PG_DUMP_HELP = """\
这是 PostgreSQL 数据库：请用 PostgreSQL 自带的工具备份和恢复（本命令只处理 SQLite）。
  备份：pg_dump --format=custom --file=crm-$(date +%Y%m%d).dump "$DATABASE_URL"
  恢复：pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" crm-YYYYMMDD.dump
上传的文件在 {uploads}，请一并备份（如 tar czf uploads-$(date +%Y%m%d).tgz -C {uploads} .）。"""


def _sqlite_file() -> Path:
    """The file of the app's SQLite database; for PostgreSQL, the pg_dump instructions."""
    from flask import current_app

    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        raise click.ClickException(PG_DUMP_HELP.format(uploads=current_app.config["UPLOAD_FOLDER"]))
    if not url.database or url.database == ":memory:":
        raise click.ClickException("数据库在内存中，没有可备份的文件")
    return Path(url.database)


def _check_backup_file(path: Path) -> str:
    """The Alembic revision of a CRM database file, after an integrity check; else an error."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise click.ClickException(f"{path} 已损坏（integrity_check 未通过）")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not {"alembic_version", "users", "projects", "audit_entries"} <= tables:
                raise click.ClickException(f"{path} 不是本系统的数据库备份")
            return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{path} 不是 SQLite 数据库：{exc}") from exc


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent snapshot even while the app writes. A new target is
    created 0600 first (SQLite would make it world-readable under the usual umask)."""
    from crm.files.private import create_private, make_private

    if not target.exists():
        os.close(create_private(target))
    make_private(target)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


@crm_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="覆盖已存在的 PATH")
def backup_command(path: Path, force: bool):
    """Write a consistent snapshot of the SQLite database to PATH (online backup: the app may
    keep running). For PostgreSQL it explains pg_dump and exits non-zero."""
    from flask import current_app

    from crm.files.private import make_private, private_folder

    source = _sqlite_file()
    if path.exists() and not force:
        raise click.ClickException(f"{path} 已存在；换一个文件名，或加 --force 覆盖")
    private_folder(path.parent)
    partial = path.with_name(path.name + ".part")
    partial.unlink(missing_ok=True)
    _copy_database(source, partial)
    with closing(sqlite3.connect(partial)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    make_private(partial)
    revision = _check_backup_file(partial)
    os.replace(partial, path)  # never a half-written backup under the real name
    click.echo(f"已备份 {source} → {path}（{path.stat().st_size // 1024} KB，版本 {revision}）")
    click.echo(f"请一并备份上传的文件：{current_app.config['UPLOAD_FOLDER']}")


@crm_cli.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="不再询问，直接恢复")
def restore_command(path: Path, yes: bool):
    """Replace the SQLite database with the backup PATH (after an integrity check). Stop the
    app first; run `flask --app wsgi db upgrade` afterwards if the backup is older."""
    from alembic.script import ScriptDirectory
    from flask import current_app

    from crm.audit.services import record

    target = _sqlite_file()
    revision = _check_backup_file(path)
    migrate = current_app.extensions["migrate"]
    scripts = ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))
    if revision not in {s.revision for s in scripts.walk_revisions()}:
        raise click.ClickException(f"备份的数据库版本 {revision} 比本程序新，不能恢复")
    if not yes:
        click.confirm(f"用 {path} 替换数据库 {target}？当前的数据将被覆盖", abort=True)
    db.session.remove()
    db.engine.dispose()
    _copy_database(path, target)
    db.engine.dispose()
    record(None, "database_restored", object_type="database", summary=f"从备份 {path.name} 恢复")
    db.session.commit()
    click.echo(f"已从 {path} 恢复数据库 {target}")
    if revision != scripts.get_current_head():
        click.echo("备份来自较早的版本：请运行 flask --app wsgi db upgrade")


# ---- the file store ------------------------------------------------------------------------


@crm_cli.command("clean-files")
@click.option("--grace-hours", type=click.FloatRange(min=1), default=24, show_default=True,
              help="只清理早于这么多小时的文件（给正在进行的上传留出时间）")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="只列出将清理的文件，不作改动")
def clean_files_command(grace_hours: float, dry_run: bool):
    """Remove from the upload folder what no record owns: files of uploads killed before their
    commit, and bytes whose record is gone; older than the grace period. Run it from cron
    (daily). Prints what it removed and records a summary in the audit log."""
    from datetime import timedelta

    from flask import current_app

    from crm.files.services import clean_store

    folder = Path(current_app.config["UPLOAD_FOLDER"])
    report = clean_store(folder, timedelta(hours=grace_hours), dry_run=dry_run)
    verb = "将删除" if dry_run else "已删除"
    for path in report.removed:
        click.echo(f"{verb} {path}")
    for path in report.recovered:
        click.echo(f"{'将归位' if dry_run else '已归位'} {path}（记录已保存，补完改名）")
    for path in report.skipped:
        click.echo(f"未处理（不是本系统生成的文件名）：{path}")
    if not dry_run:
        db.session.commit()
    click.echo(
        f"{folder}：{verb} {len(report.removed)} 个文件"
        + (f"，归位 {len(report.recovered)} 个" if report.recovered else "")
        + (f"；{report.kept_young} 个未满 {grace_hours:g} 小时，暂留" if report.kept_young else "")
    )


# ---- the job queue ---------------------------------------------------------------------------


@crm_cli.command("worker")
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True,
              help="同时运行的后台任务数（线程）")  # fmt: skip
@click.option("--periodic/--no-periodic", default=True, show_default=True,
              help="是否按时启动定时任务（每日摘要、清理）；多台机器时只在一台上启用")  # fmt: skip
def worker_command(workers: int, periodic: bool):
    """Run the background jobs (后台任务): e-mail, the daily digest at 08:00, the clean-ups.
    Ctrl-C (SIGINT) lets the running jobs finish; SIGTERM stops them at once. The queue is
    the one CRM_QUEUE_URL names (default: a SQLite file in the instance folder)."""
    from crm.jobs.queue import run_worker

    run_worker(workers, periodic=periodic)
