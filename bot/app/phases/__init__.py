"""The app's start phases, one module each, in the order App.start runs them: each takes the
app's grounds and what the phases before it made, and returns a frozen value of what it
made."""
