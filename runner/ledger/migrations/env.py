"""Alembic environment: uses the connection handed over by ``store.upgrade``."""

from __future__ import annotations

from alembic import context

from runner.ledger.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` command line: build an engine from the ini URL
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url") or "").connect()
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
