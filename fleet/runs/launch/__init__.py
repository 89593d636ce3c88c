"""A run's launch: the kit it is made with, the site and host it is placed on, what it is
given (its context, its preamble) and the token it holds for as long as it runs."""
