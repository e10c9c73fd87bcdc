"""create users

Revision ID: 6c63261c1d51
Revises:
Create Date: 2026-11-24 11:42:08.446568

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '6c63261c1d51'
down_revision = None
branch_labels = None
depends_on = None

# Exact (binary) comparison of emails on MySQL/MariaDB, whose default collation ignores case
# and accents; SQLite already compares exactly.
EXACT_EMAIL = sa.String(length=254).with_variant(
    mysql.VARCHAR(length=254, collation='utf8mb4_bin'), 'mysql', 'mariadb'
)


def upgrade():
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', EXACT_EMAIL, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('membership', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
        sa.UniqueConstraint('email', name=op.f('uq_users_email')),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )


def downgrade():
    op.drop_table('users')
