"""Pure renderers: fleet facts, budgets, runs, transcripts and the pacing report in; markdown
(and the report's chart) out. Every connector gets the same content."""
