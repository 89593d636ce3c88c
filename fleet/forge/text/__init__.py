"""What others wrote, made safe: what a reader of a forge's page sees of a text, what is hidden
from them, and what Fleetwarden posts defused of anything live."""
