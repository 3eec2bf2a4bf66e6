"""tasks (任务, issue 15)

- tasks: a piece of work on a project for one user, with a due date; open, done or
  cancelled, with who did each and when. Indexed for a user's open tasks, a project's open
  tasks, the tasks a user created and all tasks (of a state or not), each in due order; a partial
  unique index allows one open 下一步 (kind NEXT_ACTION) per project.
- projects: an index holding what decides whether a project is readable (id, is_deleted,
  carrier_id, cluster_id), which the task lists check for every row they count.
- Data: every 正常 project with a next action gets its open 下一步 task, given to its officer
  with the next action's text and due date (created by nobody: the system).

Revision ID: 33f1ad376483
Revises: b7d3e5a1c264
Create Date: 2026-12-08 00:05:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '33f1ad376483'
down_revision = 'b7d3e5a1c264'
branch_labels = None
depends_on = None

OPEN_NEXT_ACTION = "kind = 'NEXT_ACTION' AND status = 'OPEN'"


def upgrade():
    op.create_table(
        'tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('TASK', 'NEXT_ACTION', name='kind', native_enum=False, create_constraint=True), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('description', sa.String(length=2000), server_default='', nullable=False),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('assignee_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.Enum('OPEN', 'DONE', 'CANCELLED', name='status', native_enum=False, create_constraint=True), nullable=False),
        sa.Column('completion_note', sa.String(length=2000), server_default='', nullable=False),
        sa.Column('cancel_reason', sa.String(length=500), server_default='', nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('completed_at', sa.DateTime(), nullable=True),
        sa.Column('completed_by_id', sa.Integer(), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_tasks_project_id_projects')),
        sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_tasks_assignee_id_users')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_tasks_created_by_id_users')),
        sa.ForeignKeyConstraint(['completed_by_id'], ['users.id'], name=op.f('fk_tasks_completed_by_id_users')),
        sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_tasks_cancelled_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_assignee_id_status_due_on', ['assignee_id', 'status', 'due_on', 'project_id', 'id'], unique=False)
        batch_op.create_index('ix_tasks_project_id_status_due_on', ['project_id', 'status', 'due_on', 'id'], unique=False)
        batch_op.create_index('ix_tasks_created_by_id_status_due_on', ['created_by_id', 'status', 'due_on', 'project_id', 'id'], unique=False)
        batch_op.create_index('ix_tasks_status_due_on', ['status', 'due_on', 'project_id', 'id'], unique=False)
        batch_op.create_index('ix_tasks_due_on', ['due_on', 'project_id', 'id'], unique=False)
        batch_op.create_index(
            'ux_tasks_open_next_action',
            ['project_id'],
            unique=True,
            sqlite_where=sa.text(OPEN_NEXT_ACTION),
            postgresql_where=sa.text(OPEN_NEXT_ACTION),
        )

    # Whether a project is readable, from an index: the task lists check it for every row.
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.create_index('ix_projects_id_scope', ['id', 'is_deleted', 'carrier_id', 'cluster_id'], unique=False)

    # Every 正常 project with a next action: its officer's open 下一步 task, in one statement.
    now = datetime.now(UTC).replace(tzinfo=None)
    op.get_bind().execute(
        sa.text(
            "INSERT INTO tasks (project_id, kind, title, description, due_on, assignee_id, status,"
            " completion_note, cancel_reason, created_by_id, created_at, updated_at)"
            " SELECT id, 'NEXT_ACTION', substr(trim(next_action), 1, 200), '', next_action_due,"
            " officer_id, 'OPEN', '', '', NULL, :now, :now FROM projects"
            " WHERE status = 'ACTIVE' AND is_deleted = :no AND trim(next_action) <> ''"
        ),
        {'now': now, 'no': False},
    )


def downgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index('ix_projects_id_scope')

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ux_tasks_open_next_action')
        batch_op.drop_index('ix_tasks_due_on')
        batch_op.drop_index('ix_tasks_status_due_on')
        batch_op.drop_index('ix_tasks_created_by_id_status_due_on')
        batch_op.drop_index('ix_tasks_project_id_status_due_on')
        batch_op.drop_index('ix_tasks_assignee_id_status_due_on')
    op.drop_table('tasks')
