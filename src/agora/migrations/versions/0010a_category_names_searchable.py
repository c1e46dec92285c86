"""products are found by their category's name

Revision ID: 0010a
Revises: 0003
Create Date: 2026-11-26 07:45:00.000000

The application now writes a product's category name into its search vector (weight B) on every
write. Products written before that get the name appended here, with the same two configurations
(``english`` words, ``simple`` tokens); their next write rebuilds the vector in full.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010a"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE products AS p
        SET search_vector = p.search_vector
            || setweight(to_tsvector('english'::regconfig, c.name), 'B')
            || setweight(to_tsvector('simple'::regconfig, c.name), 'B')
        FROM categories AS c
        WHERE c.id = p.category_id
        """
    )


def downgrade() -> None:
    """Nothing to undo: a vector with the category's words still finds what it found before."""
