"""Users and roles."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.catalog.models import Carrier, Cluster, Department
from crm.core import LabelledEnum, UTCDateTime, enum_column, utcnow
from crm.extensions import db


class Role(LabelledEnum):
    ADMIN = "管理员"
    OFFICER = "招商专员"
    TASKFORCE = "产业专班"
    LEADER = "领导"
    DEPARTMENT = "部门用户"  # a 部门's staff: answers the 诉求 addressed to its 部门


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        sa.UniqueConstraint("username"),
        # An officer belongs to one 载体, a task force to one cluster, a department user to one
        # 部门.
        sa.CheckConstraint(
            "role != 'OFFICER' OR carrier_id IS NOT NULL", name="officer_has_carrier"
        ),
        sa.CheckConstraint(
            "role != 'TASKFORCE' OR cluster_id IS NOT NULL", name="taskforce_has_cluster"
        ),
        sa.CheckConstraint(
            "role != 'DEPARTMENT' OR department_id IS NOT NULL", name="department_has_department"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    display_name: Mapped[str] = mapped_column(sa.String(64))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"))
    cluster_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clusters.id"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    phone: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    # Where the queue sends this user's mail (the daily digest); None: no mail.
    email: Mapped[str | None] = mapped_column(sa.String(254))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Failed sign-ins in the current window, kept in the database so every worker sees them.
    failed_login_count: Mapped[int] = mapped_column(default=0, server_default="0")
    failed_login_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Raised on logout, password change, role change and disabling: every earlier session
    # (remember-me included) carries the old number and is refused.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    carrier: Mapped[Carrier | None] = relationship()
    cluster: Mapped[Cluster | None] = relationship()
    department: Mapped[Department | None] = relationship()

    def __str__(self) -> str:
        return self.display_name

    def get_id(self) -> str:
        """The identity kept in the session and the remember-me cookie: the id and the session
        version, so raising the version ends every session signed in before (see
        crm/auth/views.py `load_user`)."""
        return f"{self.id}:{self.session_version}"

    @property
    def scope_label(self) -> str:
        """Where the user works: the 载体, cluster or 部门, or the whole city."""
        if self.role is Role.OFFICER and self.carrier:
            return self.carrier.name
        if self.role is Role.TASKFORCE and self.cluster:
            return f"{self.cluster.name}专班"
        if self.role is Role.DEPARTMENT and self.department:
            return self.department.name
        return "全市"


class LoginAttempt(db.Model):
    """One sign-in attempt (登录尝试) with the client address it came from: the failures drive
    the lockout (crm/auth/signin.py, `authenticate`), the successes say which addresses an
    account is known to sign in from. Kept in the database, so every worker and every host sees
    the same counts; old rows are pruned as new ones come in."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        sa.Index("ix_login_attempts_address_at", "address", "at"),
        sa.Index("ix_login_attempts_user_id_address_at", "user_id", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    address: Mapped[str] = mapped_column(sa.String(45))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    succeeded: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class PasswordHistory(db.Model):
    """The hashes of a user's most recent passwords (密码历史), so a new one is not an old one."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
