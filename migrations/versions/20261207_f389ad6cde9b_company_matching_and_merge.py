"""company matching and merge (issue 14, item 4)

- companies.name_key is recomputed for every company with the new normalisation
  (crm.companies.names: brackets, full-width characters, legal forms and leading
  administrative divisions no longer count), so matching stays an indexed lookup;
- companies.name_head: the key's first two characters, indexed, so the fuzzy pass reads the
  companies starting alike by an equality (a LIKE or a range on name_key would depend on
  the database's collation to use the index);
- companies.merged_into_id / merged_at: an admin merged this duplicate into another company.

The downgrade drops the two columns and recomputes name_key the way the previous release did
(a frozen copy below, so the downgrade does not depend on today's code).

Revision ID: f389ad6cde9b
Revises: 3ed1d116c783
Create Date: 2026-12-07 21:20:00

"""
import re
import unicodedata

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f389ad6cde9b'
down_revision = '3ed1d116c783'
branch_labels = None
depends_on = None

_companies = sa.table(
    'companies',
    sa.column('id', sa.Integer),
    sa.column('name', sa.String),
    sa.column('name_key', sa.String),
    sa.column('name_head', sa.String),
)


def _refill(key_of, head: bool = True) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_companies.c.id, _companies.c.name)).all()
    values = {'name_key': sa.bindparam('key')}
    if head:
        values['name_head'] = sa.bindparam('head')
    update = (
        sa.update(_companies).where(_companies.c.id == sa.bindparam('company_id')).values(**values)
    )
    batch = []
    for id_, name in rows:
        key = key_of(name)
        batch.append({'company_id': id_, 'key': key, **({'head': key[:2]} if head else {})})
    for start in range(0, len(batch), 5000):
        conn.execute(update, batch[start : start + 5000])


def upgrade():
    with op.batch_alter_table('companies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_head', sa.String(length=2), server_default='', nullable=False))
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('merged_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_companies_name_head'), ['name_head'], unique=False)
        batch_op.create_index(batch_op.f('ix_companies_merged_into_id'), ['merged_into_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_companies_merged_into_id_companies'), 'companies', ['merged_into_id'], ['id']
        )

    from crm.companies.names import name_key

    _refill(name_key)


_OLD_SUFFIXES = (
    "集团股份有限公司", "集团有限责任公司", "集团有限公司", "股份有限公司", "有限责任公司",
    "有限公司", "集团公司", "集团", "公司", "corporation", "limited", "co.,ltd.", "co.,ltd",
    "co.ltd", "ltd.", "ltd", "inc.", "inc",
)


def _old_name_key(name: str) -> str:
    key = unicodedata.normalize("NFKC", name).lower()
    key = re.sub(r"\s+", "", key).replace("(中国)", "")
    stripped = True
    while stripped:
        stripped = False
        for suffix in _OLD_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
                stripped = True
                break
    return key[:200]


def downgrade():
    with op.batch_alter_table('companies', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_companies_merged_into_id_companies'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_companies_merged_into_id'))
        batch_op.drop_column('merged_at')
        batch_op.drop_column('merged_into_id')
        batch_op.drop_index(batch_op.f('ix_companies_name_head'))
        batch_op.drop_column('name_head')

    _refill(_old_name_key, head=False)
