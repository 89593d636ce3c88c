"""The offline provider: Fleetwarden's built-in stand-in for a model provider, so that
spend can be seen with no key and no network. It answers the Anthropic Messages, OpenAI
Responses and Chat Completions APIs (streamed and not) with the real wire shapes and real
usage blocks, deterministically, from a loopback server the metering proxy forwards to as
the upstream of every built-in provider the config leaves unconfigured
(:mod:`fleet.metering.offline.routes`): its requests are metered, reserved and settled on
the same path as a real provider's. No model runs: its answers say so."""
