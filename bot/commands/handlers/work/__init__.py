"""The commands on the work register: tasks (made, started through the one admission,
listed, told, done or cancelled), missions, and the chat's starts of tasks whose wait is
over."""
