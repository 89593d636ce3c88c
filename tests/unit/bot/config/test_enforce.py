"""`enforce: strict` over the config as parsed: `defaults` and agents with no sandbox or open
egress, and metering off, each refused on its line with the agents it covers; `warn` (the
default) refuses none of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config

LOOSE = """\
enforce: {enforce}
metering:
  enabled: false
defaults:
  sandbox: none
  egress: open
agents:
  - name: coder
    egress: open
  - name: other
"""


def test_strict_refuses_the_defaults_agents_and_metering_each_on_its_line(tmp_path: Path) -> None:
    """Each loosening is a problem at its line, naming the agents it covers and the fix."""
    with pytest.raises(ConfigError) as caught:
        parse_config(LOOSE.format(enforce="strict"), "fleetwarden.yaml", base_dir=tmp_path)
    said = {(p.line, p.key_path): p.message for p in caught.value.problems}
    assert "agents coder, other would spend unmetered" in said[(3, "metering.enabled")]
    assert (
        "(agents taking it: coder, other); set `sandbox: bwrap` here"
        in said[(5, "defaults.sandbox")]
    )
    assert "(agents taking it: other); set `egress: locked` here" in said[(6, "defaults.egress")]
    assert "agent 'coder' has egress: open" in said[(9, "agents[0].egress")]
    assert len(said) == 4


def test_warn_refuses_none_of_them(tmp_path: Path) -> None:
    """`enforce: warn` loads the same file: the loosenings stay warnings, as before."""
    config = parse_config(LOOSE.format(enforce="warn"), "fleetwarden.yaml", base_dir=tmp_path)
    assert config.document.enforce == "warn" and config.metering is None
