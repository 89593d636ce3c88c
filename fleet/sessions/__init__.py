"""Live sessions: one agent process per session, its turns and answers written to its stdin."""
