"""The ticket and audit ledger (SQLAlchemy 2 Core; SQLite by default, any URL works)."""
