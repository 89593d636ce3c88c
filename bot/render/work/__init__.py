"""Work in chat: tasks, missions, pipelines, schedules, changes and the task register's exports."""
