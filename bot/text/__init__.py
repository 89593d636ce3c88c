"""Small text helpers every floor of the bot uses: an agent's words shown as the agent's
(:mod:`bot.text.agent_text`) and a spreadsheet cell that never runs as a formula
(:mod:`bot.text.cells`)."""
