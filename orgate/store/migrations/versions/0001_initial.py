"""initial schema: keys, reservations, ledger

Revision ID: 0001
Revises:
"""

from alembic import op

from orgate.store.schema import keys, ledger, reservations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # The first migration creates the tables exactly as schema.py declares them; later revisions alter.
    for table in (keys, reservations, ledger):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (ledger, reservations, keys):
        table.drop(bind, checkfirst=True)
