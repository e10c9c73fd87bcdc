"""order reconciliation: confirm_requested, the reconciler's lease and attempts

Revision ID: 4c2d8e6f1a93
Revises: b18a7409572b
Create Date: 2026-12-03 15:20:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '4c2d8e6f1a93'
down_revision = 'b18a7409572b'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTERs (no batch copy): SQLite adds columns in place, and `db upgrade --sql` works.
    op.add_column('orders', sa.Column('confirm_requested', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.add_column('orders', sa.Column('next_reconcile_at', sa.DateTime().with_variant(
        mysql.DATETIME(fsp=6), 'mysql'), nullable=True))
    op.add_column('orders', sa.Column('reconcile_attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.create_index('ix_orders_status_next_reconcile_at', 'orders',
                    ['status', 'next_reconcile_at'], unique=False)


def downgrade():
    op.drop_index('ix_orders_status_next_reconcile_at', table_name='orders')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('reconcile_attempts')
        batch_op.drop_column('next_reconcile_at')
        batch_op.drop_column('confirm_requested')
