"""The approval desk's commands: ``approve``, ``deny``, ``pending``, ``permissions`` and
``interrupt`` (:mod:`~bot.commands.handlers.approvals.desk`), and answers given by a
reaction or a thread reply (:mod:`~bot.commands.handlers.approvals.answers`)."""
