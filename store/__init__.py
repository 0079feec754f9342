"""The store: SQLAlchemy 2 models, the engine and session, Alembic migrations,
and the queries several stages share.

SQLite (WAL mode) is the embedded default; PostgreSQL works through
``database.url``. Every stage reads what the previous one stored here and writes
its own rows; no stage reaches into another's internals.
"""
