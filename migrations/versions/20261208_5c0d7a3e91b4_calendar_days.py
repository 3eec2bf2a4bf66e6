"""calendar_days (工作日历, issue 16)

- calendar_days: the admin's own calendar days, each a 休息日 (REST) or a 调休上班日 (WORK) with
  its name, who entered it and when; one row per date. They take precedence over the
  chinesecalendar library, so a year it does not know yet can be entered by hand.

Revision ID: 5c0d7a3e91b4
Revises: 33f1ad376483
Create Date: 2026-12-08 01:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5c0d7a3e91b4'
down_revision = '33f1ad376483'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'calendar_days',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.Enum('REST', 'WORK', name='kind', native_enum=False, create_constraint=True), nullable=False),
        sa.Column('name', sa.String(length=20), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_calendar_days_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_days')),
        sa.UniqueConstraint('day', name=op.f('uq_calendar_days_day')),
    )


def downgrade():
    op.drop_table('calendar_days')
