"""What agents do, read from their output: one event model for every runtime's stream,
each CLI's parser into it, and reading an agent's output log line by line, in bounded time
and memory."""
