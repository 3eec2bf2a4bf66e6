"""notifications, and the indexes of 待办 (issue 15)

One row per recipient: what happened (kind), about which project, who did it, the text and the
page it links to, read or not. The (user_id, read_at, id) index answers the top bar's unread
count and the list; (user_id, key) is unique so a retried reminder is written once.

stage_changes: the index on verification alone gives way to two that also order 待办's lists:
the moves waiting for 甄别 oldest first, the moves rejected lately newest first.

Revision ID: 6b1f0d2c9a47
Revises: 4e7a1c9b2d05
Create Date: 2026-12-07 23:58:41.352276

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6b1f0d2c9a47'
down_revision = '4e7a1c9b2d05'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('EVALUATION_SUBMITTED', 'DECISION_RECORDED', 'MOVE_VERIFIED', 'MOVE_REJECTED', 'TASK_ASSIGNED', 'TASK_COMPLETED', 'TASK_CANCELLED', 'HANDOVER_OFFERED', 'HANDOVER_ACCEPTED', 'HANDOVER_DECLINED', 'CONFLICT_FLAGGED', 'DUE_REMINDER', name='kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('url', sa.String(length=500), server_default='', nullable=False),
    sa.Column('key', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_notifications_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_notifications_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('user_id', 'key', name=op.f('uq_notifications_user_id'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_notifications_user_id_read_at_id', ['user_id', 'read_at', 'id'], unique=False)

    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_changes_verification')
        batch_op.create_index('ix_stage_changes_verification_changed_at', ['verification', 'changed_at', 'id'], unique=False)
        batch_op.create_index('ix_stage_changes_verification_verified_at', ['verification', 'verified_at'], unique=False)



def downgrade():
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_changes_verification_verified_at')
        batch_op.drop_index('ix_stage_changes_verification_changed_at')
        batch_op.create_index('ix_stage_changes_verification', ['verification'], unique=False)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_id_read_at_id')
        batch_op.drop_index(batch_op.f('ix_notifications_project_id'))

    op.drop_table('notifications')
