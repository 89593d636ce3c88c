"""Bot core: grammar, access control, routing, handlers and the app's lifecycle."""
