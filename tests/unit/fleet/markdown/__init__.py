"""Markdown made safe: defusing, what is hidden, what each forge renders."""
