"""The app's start phases, in four rooms in the order App.start runs them — the core
(``core``), the fleet (``fleet``), the forges (``forges``), what serves the operator
(``serving``): each phase takes the app's grounds and what the phases before it made, and
returns a frozen value of what it made."""
