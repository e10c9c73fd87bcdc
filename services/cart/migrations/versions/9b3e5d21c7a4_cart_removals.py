"""cart removals: the orders whose lines were taken out of a cart, so each is taken once

Revision ID: 9b3e5d21c7a4
Revises: 6840cdf3e48e
Create Date: 2026-12-03 15:15:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '9b3e5d21c7a4'
down_revision = '6840cdf3e48e'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cart_removals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_ref', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('removed_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cart_removals')),
    sa.UniqueConstraint('order_ref', name=op.f('uq_cart_removals_order_ref'))
    )
    op.create_index(op.f('ix_cart_removals_user_id'), 'cart_removals', ['user_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_cart_removals_user_id'), table_name='cart_removals')
    op.drop_table('cart_removals')
