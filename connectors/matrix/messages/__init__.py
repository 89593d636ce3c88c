"""What the bot posts in Matrix: event contents (markdown notices, thread relations, images),
reply fallbacks, the JSON shapes it writes, posting and editing, and direct rooms."""
