"""Interactive key verification (SAS, emojis) of operators, compared by an admin."""
