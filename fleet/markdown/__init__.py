"""Markdown made safe, for every renderer Fleetwarden writes to: what a reader of a forge's
page sees of a text and what is hidden from them, an agent's text defused of anything live
(mentions, references, quick actions), and the cells and fences of a table or a block of
ours that no value can break out of. The forge, the pipelines and the chat renderers all
use it."""
