"""Approvals in chat: each request an agent's CLI opens shown in its thread, answered by a
reaction, a reply or a command, and the message edited to say how it ended.

:mod:`bot.approvals.render` words it all (pure); :mod:`bot.approvals.feed` posts and edits the
messages; :mod:`bot.commands.handlers.approvals.answers` decides who may answer and turns
reactions and thread replies into answers; :mod:`bot.commands.handlers.approvals.desk` holds
``approve``, ``deny``, ``pending``, ``permissions`` and ``interrupt``;
:mod:`bot.app.phases.fleet.approval_desk` builds them for the app.
"""
