"""The forges: their clients, the forge work over the fleet, the webhook routes, the news they
bring, and the review stage before a human's."""
