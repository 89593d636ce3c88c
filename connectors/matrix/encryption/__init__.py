"""The bot's end-to-end encryption: its device and crypto store, key upkeep and withheld keys,
which devices it trusts, and its cross-signing identity and signatures."""
