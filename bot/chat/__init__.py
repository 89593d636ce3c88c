"""The bot's side of a conversation: the notice board, answers before news, threads, edits,
typing, the redacting layer every connector sits behind, and agents' own words as theirs."""
