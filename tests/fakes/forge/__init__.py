"""What the forges share in the tests: webhook deliveries made and signed as GitHub and Gitea
make them."""
