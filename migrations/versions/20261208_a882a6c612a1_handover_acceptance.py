"""hand-over acceptance and move credit (issue 15)

- handovers: a state (待接收 / 已接收 / 已退回 / 已撤回), who decided and when, the decline
  reason, the sending officer, the proposed and the accepted 责任人; at most one pending
  hand-over per project (a partial unique index); existing hand-overs are 已接收, decided
  when they were made, their officers read from the audit trail;
- stage_changes.officer_id: the project's 责任人 when the move was made (the officer the move
  is credited to), back-filled from the project's officer and the officer changes in the
  audit trail (hand-overs and edits).

Revision ID: a882a6c612a1
Revises: 6b1f0d2c9a47
Create Date: 2026-12-08 00:20:00

"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a882a6c612a1'
down_revision = '6b1f0d2c9a47'
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'PENDING'")


def upgrade():
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        # A plain column plus its CHECK: SQLite's batch copy cannot build an Enum's constraint
        # on a column it is adding in the same batch.
        batch_op.add_column(sa.Column('state', sa.String(length=9), nullable=True))
        batch_op.add_column(sa.Column('from_officer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('proposed_officer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decided_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('officer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decline_reason', sa.String(length=500), server_default='', nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_handovers_from_officer_id_users'), 'users', ['from_officer_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_handovers_proposed_officer_id_users'), 'users', ['proposed_officer_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_handovers_decided_by_id_users'), 'users', ['decided_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_handovers_officer_id_users'), 'users', ['officer_id'], ['id'])

    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('officer_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_stage_changes_officer_id_users'), 'users', ['officer_id'], ['id'])

    _backfill(op.get_bind())

    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=sa.String(length=9), nullable=False)
        batch_op.create_check_constraint(
            op.f('ck_handovers_state'), "state IN ('PENDING', 'ACCEPTED', 'DECLINED', 'WITHDRAWN')"
        )
        batch_op.create_index('ix_handovers_state_to_carrier_id_handed_at', ['state', 'to_carrier_id', 'handed_at'], unique=False)
        batch_op.create_index('uq_handovers_pending_project', ['project_id'], unique=True, sqlite_where=PENDING, postgresql_where=PENDING)


def _backfill(conn):
    """Existing hand-overs were accepted when made; every move is credited to the officer in
    charge then: the project's officer, or the old officer of the first change of officer
    (audited as a diff {"officer_id": [old, new]}) made after the move."""
    handovers = sa.table(
        'handovers', sa.column('id', sa.Integer), sa.column('project_id', sa.Integer),
        sa.column('handed_at', sa.DateTime), sa.column('handed_by_id', sa.Integer),
        sa.column('state', sa.String), sa.column('decided_at', sa.DateTime),
        sa.column('decided_by_id', sa.Integer), sa.column('from_officer_id', sa.Integer),
        sa.column('officer_id', sa.Integer),
    )
    stage_changes = sa.table(
        'stage_changes', sa.column('project_id', sa.Integer), sa.column('changed_at', sa.DateTime),
        sa.column('officer_id', sa.Integer),
    )
    projects = sa.table('projects', sa.column('id', sa.Integer), sa.column('officer_id', sa.Integer))
    audit = sa.table(
        'audit_entries', sa.column('created_at', sa.DateTime), sa.column('action', sa.String),
        sa.column('object_type', sa.String), sa.column('object_id', sa.Integer),
        sa.column('changes', sa.JSON),
    )
    conn.execute(
        handovers.update().values(
            state='ACCEPTED', decided_at=handovers.c.handed_at, decided_by_id=handovers.c.handed_by_id
        )
    )
    conn.execute(
        stage_changes.update().values(
            officer_id=sa.select(projects.c.officer_id)
            .where(projects.c.id == stage_changes.c.project_id)
            .scalar_subquery()
        )
    )
    # Officer changes are rare (hand-overs and reassignments): read them, newest first.
    changes = defaultdict(list)
    for at, action, project_id, diff in conn.execute(
        sa.select(audit.c.created_at, audit.c.action, audit.c.object_id, audit.c.changes)
        .where(
            audit.c.object_type == 'projects',
            audit.c.action.in_(('project_handed_over', 'project_updated')),
        )
        .order_by(audit.c.created_at.desc(), audit.c.object_id)
    ):
        officers = (diff or {}).get('officer_id')
        if project_id is not None and isinstance(officers, list) and len(officers) == 2:
            changes[project_id].append((at, action, officers[0], officers[1]))
    for project_id, officer_changes in changes.items():
        for at, _action, old, _new in officer_changes:  # newest first: the earliest one wins
            conn.execute(
                stage_changes.update()
                .where(stage_changes.c.project_id == project_id, stage_changes.c.changed_at < at)
                .values(officer_id=old)
            )
        # A project's hand-overs and their audit entries, both oldest first, pair up.
        handed = [c for c in reversed(officer_changes) if c[1] == 'project_handed_over']
        rows = conn.execute(
            sa.select(handovers.c.id)
            .where(handovers.c.project_id == project_id)
            .order_by(handovers.c.handed_at, handovers.c.id)
        ).scalars().all()
        for handover_id, (_at, _action, old, new) in zip(rows, handed, strict=False):
            conn.execute(
                handovers.update()
                .where(handovers.c.id == handover_id)
                .values(from_officer_id=old, officer_id=new)
            )


def downgrade():
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_stage_changes_officer_id_users'), type_='foreignkey')
        batch_op.drop_column('officer_id')

    # Hand-overs still waiting for the receiving 载体 did not happen in the older schema.
    op.execute("DELETE FROM handovers WHERE state = 'PENDING'")
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_index('uq_handovers_pending_project', sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.drop_index('ix_handovers_state_to_carrier_id_handed_at')
        batch_op.drop_constraint(batch_op.f('ck_handovers_state'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_handovers_officer_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_handovers_decided_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_handovers_proposed_officer_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_handovers_from_officer_id_users'), type_='foreignkey')
        batch_op.drop_column('decline_reason')
        batch_op.drop_column('officer_id')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('decided_by_id')
        batch_op.drop_column('proposed_officer_id')
        batch_op.drop_column('from_officer_id')
        batch_op.drop_column('state')
