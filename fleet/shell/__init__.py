"""Shell command lines read as the shell reads them: strictly, for allow rules and the lists
of reading commands (:mod:`fleet.shell.commands`); leniently, for deny rules
(:mod:`fleet.shell.mentions`)."""
