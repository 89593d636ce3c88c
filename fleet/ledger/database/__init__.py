"""The ledger's database: one engine over SQLite or PostgreSQL, its appender, where it is,
and its numbered migrations."""
