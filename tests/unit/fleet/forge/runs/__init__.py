"""A forge run: deciding, starting, watching, its rounds and reviews."""
