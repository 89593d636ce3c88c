"""What the budgets room's console tests write at the head of their configs: the console,
quick stops, the fake provider as Anthropic's upstream and a price for the model."""

PRICED_HEAD = """\
state_dir: ./state
connectors:
  console: {{}}
defaults:
  stop_grace_seconds: 1
providers:
  anthropic:
    upstream: {upstream}
prices:
  {model}: {{input: 3.0, output: 15.0}}
"""
"""A ``str.format`` template (``{upstream}``, ``{model}``): $3 in and $15 out a million
tokens; a module's budgets and agents follow."""
