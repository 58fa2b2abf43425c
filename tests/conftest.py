"""Fixtures for every test suite: the database a test runs on (SQLite and PostgreSQL),
from tests/databases.py (see its docstring and docs/testing.md)."""

from tests.databases import (
    database,
    database_url,
    make_database_url,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_generate_tests,
    test_databases,
)

__all__ = [
    "database",
    "database_url",
    "make_database_url",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_generate_tests",
    "test_databases",
]
