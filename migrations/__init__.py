"""The Alembic environment shared by the kernel's and every plugin's migration branch."""
