"""create catalog and reservations

Revision ID: 241544b4707a
Revises:
Create Date: 2026-11-24 11:45:03.176522

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '241544b4707a'
down_revision = None
branch_labels = None
depends_on = None


def exact_string(length):
    # Compared byte for byte on MySQL/MariaDB (whose default collation ignores case and
    # accents), as SQLite does: slugs and order references are exact identifiers.
    return sa.String(length=length).with_variant(
        mysql.VARCHAR(length=length, collation='utf8mb4_bin'), 'mysql', 'mariadb'
    )


def upgrade():
    op.create_table('products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', exact_string(200), nullable=False),
    sa.Column('image', sa.String(length=255), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('available', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('available >= 0', name=op.f('ck_products_available_not_negative')),
    sa.CheckConstraint('price_cents >= 0', name=op.f('ck_products_price_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('slug', name=op.f('uq_products_slug')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    op.create_table('reservations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_ref', exact_string(64), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations')),
    sa.UniqueConstraint('order_ref', name=op.f('uq_reservations_order_ref')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index('ix_reservations_status_expires_at', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservations_user_id'), ['user_id'], unique=False)

    op.create_table('reservation_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reservation_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_reservation_lines_quantity_positive')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_reservation_lines_product_id_products')),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.id'], name=op.f('fk_reservation_lines_reservation_id_reservations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_lines')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('reservation_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservation_lines_product_id'), ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservation_lines_reservation_id'), ['reservation_id'], unique=False)



def downgrade():
    # Dropping a table drops its indexes; dropping them first fails on MySQL, where an
    # index backing a foreign key cannot go while the key exists.
    op.drop_table('reservation_lines')
    op.drop_table('reservations')
    op.drop_table('products')
