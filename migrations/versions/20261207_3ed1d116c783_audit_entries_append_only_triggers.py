"""audit entries append-only in the database (issue 14, item 20)

The ORM already refuses to change or delete an AuditEntry (crm/audit/models.py), but a
textual `UPDATE audit_entries ...` through the app's own engine, or any other client of the
database, went through. Triggers make the database itself refuse UPDATE and DELETE of audit
rows (and TRUNCATE on PostgreSQL, which row triggers do not see):

- SQLite: BEFORE UPDATE / BEFORE DELETE triggers that RAISE(ABORT, ...): the statement fails
  with "audit entries are append-only" (an IntegrityError) and nothing changes.
- PostgreSQL: one plpgsql function raising SQLSTATE 23001 (restrict_violation, so also an
  IntegrityError) used by a BEFORE UPDATE OR DELETE row trigger and a BEFORE TRUNCATE
  statement trigger.

Mind for later migrations: on SQLite, a batch operation that recreates audit_entries (a
"move and copy") drops its triggers with the old table; such a migration must create them
again (tests/test_audit.py checks the head schema refuses UPDATE and DELETE).

Revision ID: 3ed1d116c783
Revises: cffb03cd1124
Create Date: 2026-12-07 21:15:00

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "3ed1d116c783"
down_revision = "cffb03cd1124"
branch_labels = None
depends_on = None

MESSAGE = "audit entries are append-only"

SQLITE_UP = [
    f"""CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_entries_no_delete",
    "DROP TRIGGER IF EXISTS audit_entries_no_update",
]

POSTGRESQL_UP = [
    f"""CREATE FUNCTION audit_entries_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
    END;
    $$""",
    """CREATE TRIGGER audit_entries_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
    """CREATE TRIGGER audit_entries_no_truncate
    BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()""",
]
POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries",
    "DROP TRIGGER IF EXISTS audit_entries_no_update_or_delete ON audit_entries",
    "DROP FUNCTION IF EXISTS audit_entries_append_only()",
]


def _statements(sqlite: list[str], postgresql: list[str]) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite
    if dialect == "postgresql":
        return postgresql
    raise NotImplementedError(f"no append-only triggers for {dialect}")


def upgrade():
    for statement in _statements(SQLITE_UP, POSTGRESQL_UP):
        op.execute(statement)


def downgrade():
    for statement in _statements(SQLITE_DOWN, POSTGRESQL_DOWN):
        op.execute(statement)
