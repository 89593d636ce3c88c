"""The ``fleetwarden matrix …`` commands: ``setup`` (the bot's account, control room and
invite, with Synapse's admin API), ``device`` and ``trust``, and ``cross-sign``."""
