"""What a run leaves to read: its output log and how it is read, the outputs it wrote, its
story as a person reads it, and the facts drawn from it."""
