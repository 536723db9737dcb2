"""Alembic environment: runs one branch (the kernel's or a plugin's) on a given connection.

The kernel passes the connection and the branch's own version table through
``config.attributes``; there is no ``alembic.ini`` — use ``imageapi db ...``.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
