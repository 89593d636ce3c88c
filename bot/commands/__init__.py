"""What operators type: the tokenizer and grammar, the command table, access control, help,
confirmations, the router from a chat message to a handler, and the handlers themselves."""
