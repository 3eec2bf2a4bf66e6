"""list indexes with is_deleted (issue 7)

The project list filters by stage and/or 载体, always by is_deleted, and sorts by updated_at:
the indexes hold the equality columns first, then is_deleted, then the sort, so the page is an
ordered index scan and the page count is read from the index alone (no lookup of 35,000 rows
at 100,000 projects).

Revision ID: 9994dceb73a9
Revises: a972e7e2fcd7
Create Date: 2026-11-28 09:49:30.555363

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9994dceb73a9'
down_revision = 'a972e7e2fcd7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_projects_carrier_id_updated_at'))
        batch_op.drop_index(batch_op.f('ix_projects_stage_updated_at'))
        batch_op.create_index('ix_projects_carrier_id_is_deleted_updated_at', ['carrier_id', 'is_deleted', 'updated_at'], unique=False)
        batch_op.create_index('ix_projects_carrier_id_stage_is_deleted_updated_at', ['carrier_id', 'stage', 'is_deleted', 'updated_at'], unique=False)
        batch_op.create_index('ix_projects_stage_is_deleted_updated_at', ['stage', 'is_deleted', 'updated_at'], unique=False)


def downgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index('ix_projects_stage_is_deleted_updated_at')
        batch_op.drop_index('ix_projects_carrier_id_stage_is_deleted_updated_at')
        batch_op.drop_index('ix_projects_carrier_id_is_deleted_updated_at')
        batch_op.create_index(batch_op.f('ix_projects_stage_updated_at'), ['stage', 'updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_projects_carrier_id_updated_at'), ['carrier_id', 'updated_at'], unique=False)
