"""response_store: responses kept for previous_response_id (opt-in, per key, with retention)

Revision ID: 0004_response_store
Revises: 0007_sso
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_response_store"
down_revision = "0007_sso"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_store",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("items_json", sa.Text, nullable=False),
    )
    op.create_index("ix_response_store_expires", "response_store", ["expires_ms"])


def downgrade() -> None:
    op.drop_index("ix_response_store_expires", "response_store")
    op.drop_table("response_store")
