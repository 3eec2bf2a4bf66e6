"""Catalogues the admin edits: 载体, industry clusters and chains, channels, 终止 reasons, 部门."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core import LabelledEnum, enum_column
from crm.extensions import db


class CatalogEntry:
    """Columns every catalogue shares. Entries are deactivated, never deleted."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    sort_order: Mapped[int] = mapped_column(default=0, server_default="0")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    def __str__(self) -> str:
        return self.name


class Carrier(CatalogEntry, db.Model):
    """载体: a county, district or park a project lands in."""

    __tablename__ = "carriers"
    __table_args__ = (sa.UniqueConstraint("name"),)
    leading_industry: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")


class ClusterCategory(LabelledEnum):
    TRADITIONAL = "传统优势产业"
    EMERGING = "新兴产业"
    FUTURE = "未来产业"


class Cluster(CatalogEntry, db.Model):
    """产业集群 of the 4+6+6 system; a task force (产业专班) serves one."""

    __tablename__ = "clusters"
    __table_args__ = (sa.UniqueConstraint("name"),)
    category: Mapped[ClusterCategory] = mapped_column(enum_column(ClusterCategory, "category"))
    chains: Mapped[list[Chain]] = relationship(
        back_populates="cluster", order_by="Chain.sort_order, Chain.id"
    )


class Chain(CatalogEntry, db.Model):
    """产业链 within a cluster."""

    __tablename__ = "chains"
    __table_args__ = (sa.UniqueConstraint("cluster_id", "name"),)
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id"), index=True)
    cluster: Mapped[Cluster] = relationship(back_populates="chains")


class Channel(CatalogEntry, db.Model):
    """招商渠道: how a lead came in (measures 15–19)."""

    __tablename__ = "channels"
    __table_args__ = (sa.UniqueConstraint("name"),)


class TerminationReason(CatalogEntry, db.Model):
    """Reasons for 终止."""

    __tablename__ = "termination_reasons"
    __table_args__ = (sa.UniqueConstraint("name"),)


class Department(CatalogEntry, db.Model):
    """部门: a municipal department (市直单位) the policy names as 牵头 or 配合单位; its users
    (Role.DEPARTMENT) answer the 诉求 addressed to it (载体吹哨、专班报到，专班吹哨、部门报到)."""

    __tablename__ = "departments"
    __table_args__ = (sa.UniqueConstraint("name"),)
    short_name: Mapped[str] = mapped_column(sa.String(50), default="", server_default="")
