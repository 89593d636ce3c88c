"""What operators type, read: the tokenizer, argument shapes, binding and the grammar."""
