"""``fleetwarden init``: a commented config and roster file written from a preset (solo,
pair, forge, pipeline), which ``check-config`` accepts and ``run`` starts as written.

:mod:`bot.cli.init.presets` renders the files from the templates shipped in the package
(``templates/``), purely; :mod:`bot.cli.init.command` asks (only on a terminal), refuses to
overwrite, makes the demo repository and writes.
"""
