"""search text and dashboard indexes (issue 7)

- projects.search_text: the project's and its company's names, normalized (NFKC, case folded),
  for the text search (crm/projects/search.py); filled here for the existing projects, with the
  normalization written out (a migration does not import the app, which may change).
- An index (search_text, is_deleted, updated_at): the search scans it, not the table, and
  sorts its matches from it (crm/pagination.py).
- stage_changes (to_stage, verification, changed_at, project_id) and funds_records
  (received_on, project_id): the dashboard's "moved into a stage, verified, in a year" and
  "funds received in a period" read these indexes alone.

Revision ID: 8030d43616c1
Revises: 9994dceb73a9
Create Date: 2026-11-28 10:50:42.642301

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8030d43616c1'
down_revision = '9994dceb73a9'
branch_labels = None
depends_on = None

BATCH = 5000


def _normalize(text):
    return unicodedata.normalize("NFKC", text or "").casefold()


def _fill_search_text():
    conn = op.get_bind()
    projects = sa.table(
        "projects",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("company_id", sa.Integer),
        sa.column("search_text", sa.String),
    )
    companies = sa.table("companies", sa.column("id", sa.Integer), sa.column("name", sa.String))
    update = (
        sa.update(projects)
        .where(projects.c.id == sa.bindparam("pid"))
        .values(search_text=sa.bindparam("text"))
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(projects.c.id, projects.c.name, companies.c.name)
            .join(companies, companies.c.id == projects.c.company_id)
            .where(projects.c.id > last)
            .order_by(projects.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(
            update,
            [
                {"pid": pid, "text": _normalize(name) + "\n" + _normalize(company)}
                for pid, name, company in rows
            ],
        )
        last = rows[-1][0]


def upgrade():
    with op.batch_alter_table('funds_records', schema=None) as batch_op:
        batch_op.create_index('ix_funds_records_received_on_project_id', ['received_on', 'project_id'], unique=False)

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.String(length=410), server_default='', nullable=False))
    _fill_search_text()
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.create_index('ix_projects_search_text', ['search_text', 'is_deleted', 'updated_at'], unique=False)

    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.create_index('ix_stage_changes_to_stage_verification', ['to_stage', 'verification', 'changed_at', 'project_id'], unique=False)


def downgrade():
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_changes_to_stage_verification')

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index('ix_projects_search_text')
        batch_op.drop_column('search_text')

    with op.batch_alter_table('funds_records', schema=None) as batch_op:
        batch_op.drop_index('ix_funds_records_received_on_project_id')
