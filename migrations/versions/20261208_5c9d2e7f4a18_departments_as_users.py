"""departments as users (issue 16): the 部门 catalogue and the role 部门用户

- departments: the 部门 the policy names as 牵头/配合单位 (seeded by `crm seed`);
- users.department_id: the 部门 of a department user, with the CHECK that one has it;
- users.role: one more value, DEPARTMENT (VARCHAR(10), its CHECK widened).

SQLite cannot change a CHECK in place, and batch mode would copy the users table, which the
foreign keys of the tables that point at users refuse (or cascade) once they hold rows. So on
SQLite the column is added with ALTER TABLE and the constraints are rewritten in the table's
definition (SQLite's documented procedure for constraints the rows already satisfy: sqlite.org
lang_altertable.html, "making other kinds of table schema changes"), inside the migration's
transaction; PostgreSQL alters the constraints directly.

Revision ID: 5c9d2e7f4a18
Revises: 5c0d7a3e91b4
Create Date: 2026-12-08 01:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "5c9d2e7f4a18"
down_revision = "5c0d7a3e91b4"
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('ADMIN', 'OFFICER', 'TASKFORCE', 'LEADER')"
NEW_ROLES = "role IN ('ADMIN', 'OFFICER', 'TASKFORCE', 'LEADER', 'DEPARTMENT')"
HAS_DEPARTMENT = "role != 'DEPARTMENT' OR department_id IS NOT NULL"

# The users table's definition on SQLite: (before, after) of each piece the upgrade rewrites.
SQLITE_EDITS = [
    ("role VARCHAR(9) NOT NULL", "role VARCHAR(10) NOT NULL"),
    (
        f"CONSTRAINT ck_users_role CHECK ({OLD_ROLES})",
        f"CONSTRAINT ck_users_role CHECK ({NEW_ROLES})",
    ),
]
SQLITE_ADDED = (
    ", \n\tCONSTRAINT fk_users_department_id_departments FOREIGN KEY(department_id)"
    " REFERENCES departments (id)"
    f", \n\tCONSTRAINT ck_users_department_has_department CHECK ({HAS_DEPARTMENT})"
)


def upgrade():
    op.create_table(
        "departments",
        sa.Column("short_name", sa.String(length=50), server_default="", nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("name", name=op.f("uq_departments_name")),
    )

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.add_column("users", sa.Column("department_id", sa.Integer(), nullable=True))
        _rewrite_sqlite_users(bind, SQLITE_EDITS, added=SQLITE_ADDED)
        return

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "role",
            existing_type=sa.String(length=9),
            type_=sa.String(length=10),
            existing_nullable=False,
        )
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_role"), NEW_ROLES)
        batch_op.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_users_department_id_departments"),
            "departments",
            ["department_id"],
            ["id"],
        )
        batch_op.create_check_constraint(op.f("ck_users_department_has_department"), HAS_DEPARTMENT)


def downgrade():
    bind = op.get_bind()
    # The old schema has no role that reads nothing: a department user becomes a disabled
    # account (it cannot sign in, its sessions end) of the role that changes nothing, 领导;
    # an admin who enables it again chooses its role then. Its rows elsewhere stay.
    bind.execute(
        sa.text(
            "UPDATE users SET role = 'LEADER', department_id = NULL, is_active = :no,"
            " session_version = session_version + 1 WHERE role = 'DEPARTMENT'"
        ),
        {"no": False},
    )

    if bind.dialect.name == "sqlite":
        _rewrite_sqlite_users(
            bind, [(after, before) for before, after in SQLITE_EDITS], removed=SQLITE_ADDED
        )
        # A plain DROP COLUMN (SQLite 3.35 and later), now that no constraint names it.
        op.drop_column("users", "department_id")
    else:
        with op.batch_alter_table("users", schema=None) as batch_op:
            batch_op.drop_constraint(op.f("ck_users_department_has_department"), type_="check")
            batch_op.drop_constraint(
                batch_op.f("fk_users_department_id_departments"), type_="foreignkey"
            )
            batch_op.drop_column("department_id")
            batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
            batch_op.create_check_constraint(op.f("ck_users_role"), OLD_ROLES)
            batch_op.alter_column(
                "role",
                existing_type=sa.String(length=10),
                type_=sa.String(length=9),
                existing_nullable=False,
            )

    op.drop_table("departments")


def _rewrite_sqlite_users(bind, edits, added="", removed=""):
    """Rewrite the users table's definition on SQLite: each (before, after) of `edits`, then
    `added` appended to (or `removed` taken from) its constraints. Every row satisfies the
    result (checked); the schema version is raised so every connection reads it again."""
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'")
    ).scalar()
    for before, after in edits:
        if before not in sql:
            raise RuntimeError(f"users table: {before!r} not found in its definition")
        sql = sql.replace(before, after)
    body, closing = sql.rstrip().rsplit(")", 1)
    body = body.rstrip()
    if removed:
        if not body.endswith(removed):
            raise RuntimeError("users table: the department constraints are not where expected")
        body = body[: -len(removed)]
    sql = f"{body}{added}\n){closing}"
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.execute(
            sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'users'"),
            {"sql": sql},
        )
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"users table after the rewrite: {problems}")
    broken = bind.exec_driver_sql(
        "SELECT count(*) FROM users WHERE NOT ("
        + (NEW_ROLES if added else OLD_ROLES)
        + ")"
        + (f" OR NOT ({HAS_DEPARTMENT})" if added else "")
    ).scalar()
    if broken:
        raise RuntimeError(f"users table: {broken} row(s) break the rewritten constraints")
