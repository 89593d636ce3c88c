"""The ``opencode`` runtime: opencode, headless (``opencode run``) or its TUI.

Headless::

    opencode run --pure --format json [--model PROVIDER/MODEL] -- PROMPT

``--format json`` writes one event per line, each with the ``sessionID``; a follow-up
continues it with ``--session ID`` (``--continue``, the newest session, when none is
known). On a terminal: ``opencode --pure [--model PROVIDER/MODEL] [--prompt=PROMPT]``.
A prompt is never read as a flag: it follows ``--``, or is glued to ``--prompt=``.
A model without a provider prefix is taken to be Anthropic's.

Standard input must be ``/dev/null`` (the backend's business): ``opencode run`` reads a
piped stdin into the message, so on a pipe that never ends it waits forever.

Configuration is inline, in ``OPENCODE_CONFIG_CONTENT``: the provider's URL (ending in
``/v1``), and the hidden title request turned off (it would spend tokens that appear
nowhere but at a proxy). The ``OPENCODE_DISABLE_*`` switches stop model-list fetches,
updates, default plugins, LSP downloads and sharing. opencode retries a failing provider
forever: the spec's ``timeout`` is what ends such a run. The API key comes only from the
spec's ``secret_env``.
"""

from __future__ import annotations

import json
from typing import Any

from fleet.model import AgentSpec, LaunchPlan
from fleet.runtimes import RuntimeContext, base_env
from fleet.runtimes._cli import (
    checked_model,
    checked_session,
    last_session,
    required_prompt,
    with_v1,
)

PROVIDER = "anthropic"
HEADLESS_FLAGS = ("--pure", "--format", "json")
QUIET_ENV = {
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
}


class OpencodeRuntime:
    """opencode (``opencode-ai``)."""

    name = "opencode"

    def __init__(self, executable: str = "opencode") -> None:
        self._exe = executable

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        model = _model_args(spec)
        if ctx.tty:
            prompt = (f"--prompt={spec.prompt}",) if spec.prompt else ()
            return self._plan(spec, ctx, (self._exe, "--pure", *model, *prompt))
        prompt_text = required_prompt(spec, self.name)
        return self._plan(spec, ctx, (self._exe, "run", *HEADLESS_FLAGS, *model, "--", prompt_text))

    def follow_up(
        self, spec: AgentSpec, ctx: RuntimeContext, session: str | None, text: str
    ) -> LaunchPlan | None:
        if ctx.tty:
            return None  # the TUI is running: the text is typed into it
        resume = ("--session", checked_session(session)) if session else ("--continue",)
        argv = (self._exe, "run", *HEADLESS_FLAGS, *_model_args(spec), *resume, "--", text)
        return self._plan(spec, ctx, argv)

    def session_id(self, output: str) -> str | None:
        return last_session(output, lambda event: event.get("sessionID"))

    def _plan(self, spec: AgentSpec, ctx: RuntimeContext, argv: tuple[str, ...]) -> LaunchPlan:
        env = base_env(spec, ctx)
        env.update(QUIET_ENV)
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config(ctx), separators=(",", ":"))
        return LaunchPlan(argv=argv, env=env, cwd=ctx.workdir, takes_input=ctx.tty)


def config(ctx: RuntimeContext) -> dict[str, Any]:
    """opencode's inline configuration."""
    settings: dict[str, Any] = {
        "autoupdate": False,
        "share": "disabled",
        "agent": {"title": {"disable": True}},
    }
    if PROVIDER in ctx.provider_urls:
        base_url = with_v1(ctx.provider_urls[PROVIDER])
        settings["provider"] = {PROVIDER: {"options": {"baseURL": base_url}}}
    return settings


def _model_args(spec: AgentSpec) -> tuple[str, ...]:
    model = checked_model(spec)
    if model is None:
        return ()
    return ("--model", model if "/" in model else f"{PROVIDER}/{model}")
