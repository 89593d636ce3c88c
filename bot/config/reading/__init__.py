"""Reading the config file: YAML with line hints, defaults, partial documents, the resolved
settings."""
