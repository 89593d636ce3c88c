"""The stores of the work on repositories: runs' branches and checkouts, forge runs and their
audit, and the changes the report reckons from them."""
