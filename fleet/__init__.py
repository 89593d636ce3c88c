"""The fleet: the agents themselves. ``supervisor`` starts, watches, feeds and stops them;
``runs``, ``agents``, ``runtimes``, ``backends``, ``sessions`` and ``hosts`` are how; ``sandbox``,
``permissions``, ``approvals`` and ``redaction`` what confines them; ``metering``,
``accounts``, ``budgets`` and ``ledger`` what they spend and what is kept; the modules at the
top are the vocabulary every part shares (clock, errors, names, notices, model, schema)."""
