"""What the config file is checked for beyond its schema: problems at file:line, and the
checks across sections."""
