"""job runs, sent mails and users' e-mail addresses (issue 15: the job queue and e-mail)

- job_runs: every job put on the queue, from its first attempt to its last (后台任务);
- sent_mails: the key of every mail sent, so a retried job sends nothing twice;
- users.email: where a user's mail goes (nullable: no mail).

Revision ID: b7d3e5a1c264
Revises: a882a6c612a1
Create Date: 2026-12-08 00:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d3e5a1c264'
down_revision = 'a882a6c612a1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('summary', sa.String(length=200), server_default='', nullable=False),
        sa.Column('status', sa.Enum('RUNNING', 'SUCCEEDED', 'RETRYING', 'FAILED', name='status', native_enum=False, create_constraint=True, length=9), nullable=False),
        sa.Column('attempt', sa.Integer(), server_default='1', nullable=False),
        sa.Column('error', sa.String(length=2000), server_default='', nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
        sa.UniqueConstraint('task_id', name=op.f('uq_job_runs_task_id')),
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_started_at_id', ['started_at', 'id'], unique=False)
        batch_op.create_index('ix_job_runs_status_started_at_id', ['status', 'started_at', 'id'], unique=False)

    op.create_table(
        'sent_mails',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('address', sa.String(length=254), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sent_mails_user_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sent_mails')),
        sa.UniqueConstraint('key', name=op.f('uq_sent_mails_key')),
    )
    with op.batch_alter_table('sent_mails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sent_mails_sent_at'), ['sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sent_mails_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))


def downgrade():
    # A plain DROP COLUMN (SQLite 3.35 and later have it): batch mode would copy the users
    # table, which other tables' foreign keys refuse once they hold rows.
    op.drop_column('users', 'email')

    with op.batch_alter_table('sent_mails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sent_mails_user_id'))
        batch_op.drop_index(batch_op.f('ix_sent_mails_sent_at'))
    op.drop_table('sent_mails')

    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_status_started_at_id')
        batch_op.drop_index('ix_job_runs_started_at_id')
    op.drop_table('job_runs')
