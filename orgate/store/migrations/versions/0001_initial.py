"""initial schema: keys, reservations, ledger

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from orgate.store.schema import keys, ledger, reservations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # The first migration creates these three tables as schema.py declares them (copied onto a private
    # MetaData so that tables added to schema.py later belong to their own revisions, not this one).
    md = sa.MetaData()
    for table in (keys, reservations, ledger):
        table.to_metadata(md).create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (ledger, reservations, keys):
        table.drop(bind, checkfirst=True)
