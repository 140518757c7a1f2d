"""sign-in through the organization's identity provider: people, device grants, tokens, managed settings,
client telemetry

Revision ID: 0007_sso
Revises: 0003_ledger_rejects
"""

from alembic import op

from orgate.sso.schema import ALL, metadata

revision = "0007_sso"
down_revision = "0003_ledger_rejects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # New tables only (nothing existing changes), created from their one definition in orgate/sso/schema.py.
    metadata.create_all(op.get_bind(), tables=list(ALL))


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=list(reversed(ALL)))
