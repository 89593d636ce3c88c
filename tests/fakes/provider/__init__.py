"""The fake model provider (Anthropic's, OpenAI's and Google's APIs as they answer), its
payloads and refusals, and ChatGPT's Codex backend."""
