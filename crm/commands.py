"""`flask --app wsgi crm ...`: user creation and the demo data."""

from __future__ import annotations

import os

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from crm.auth.models import Role
from crm.catalog.models import Carrier, Cluster
from crm.core import ServiceError
from crm.extensions import db

crm_cli = AppGroup("crm", help="双招双引 CRM 管理命令")

ROLE_NAMES = {
    "admin": Role.ADMIN,
    "officer": Role.OFFICER,
    "taskforce": Role.TASKFORCE,
    "leader": Role.LEADER,
}


@crm_cli.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(sorted(ROLE_NAMES)), required=True)
@click.option("--carrier", help="载体名称（招商专员必填）")
@click.option("--cluster", help="产业集群名称（产业专班必填）")
@click.option("--name", "display_name", default="", help="显示的姓名")
def create_user_command(username, role, carrier, cluster, display_name):
    """Create a user; the password comes from CRM_PASSWORD or a prompt."""
    from crm.auth.services import create_user

    carrier_obj = cluster_obj = None
    if carrier:
        carrier_obj = db.session.scalar(sa.select(Carrier).where(Carrier.name == carrier))
        if carrier_obj is None:
            raise click.BadParameter(f"没有名为“{carrier}”的载体", param_hint="--carrier")
    if cluster:
        cluster_obj = db.session.scalar(sa.select(Cluster).where(Cluster.name == cluster))
        if cluster_obj is None:
            raise click.BadParameter(f"没有名为“{cluster}”的产业集群", param_hint="--cluster")
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
        )
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException("；".join(exc.errors.values()) or exc.message) from exc
    db.session.commit()
    click.echo(f"已创建用户 {user.username}（{user.role.label}）")


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
    from crm.demo import DEMO_PASSWORD, load_demo

    created = load_demo()
    db.session.commit()
    click.echo("演示数据已载入。" if created else "演示数据已存在，未重复载入。")
    click.echo(f"演示账号（密码均为 {DEMO_PASSWORD}）：")
    from crm.demo import DEMO_USERS

    for username, display_name, role, scope in DEMO_USERS:
        click.echo(f"  {username:<14} {role.label:<5} {scope or '':<10} {display_name}")
