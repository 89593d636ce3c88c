"""What reaches the bot from Matrix: the long-lived sync loop and its backoff, the rooms it
serves, and raw room events translated into inbound messages."""
