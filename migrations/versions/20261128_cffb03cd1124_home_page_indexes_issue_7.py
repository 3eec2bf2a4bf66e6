"""home page indexes (issue 7)

An officer's home page (crm/projects/services.py, `my_work`) at a province's scale:
- projects (officer_id, status, next_action_due) and (officer_id, status, last_followup_on):
  the officer's next actions due and stale projects are read in order from these, not sorted
  from the thousands of projects of the officer's 载体 (about 28 ms each at 100,000 projects);
- stage_changes (changed_at, id): the latest moves are walked newest first, each checked
  against the scope, instead of sorting every move of the 载体 (about 70 ms).

Revision ID: cffb03cd1124
Revises: 8030d43616c1
Create Date: 2026-11-28 14:22:53.468898

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'cffb03cd1124'
down_revision = '8030d43616c1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.create_index('ix_projects_officer_id_status_last_followup_on', ['officer_id', 'status', 'last_followup_on'], unique=False)
        batch_op.create_index('ix_projects_officer_id_status_next_action_due', ['officer_id', 'status', 'next_action_due'], unique=False)

    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.create_index('ix_stage_changes_changed_at_id', ['changed_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_changes_changed_at_id')

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index('ix_projects_officer_id_status_next_action_due')
        batch_op.drop_index('ix_projects_officer_id_status_last_followup_on')
