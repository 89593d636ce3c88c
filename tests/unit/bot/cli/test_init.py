"""`fleetwarden init`'s questions and presets: on a terminal each question offers its
default, which an empty answer takes; a preset's files are YAML naming its agents."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from bot.cli.init.command import configure_parser, main
from bot.cli.init.presets import PRESETS, Answers, UnknownPreset, preset_named, render


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(argv)


def test_a_terminal_is_asked_and_an_empty_answer_takes_the_default(tmp_path: Path) -> None:
    """Asked the preset, then a forge's kind, API, repository, login; Enter takes each default."""
    asked: list[tuple[str, str]] = []
    answers = iter(["forge", "gitea", "https://git.example.org/api/v1", "", ""])

    def ask(question: str, default: str) -> str:
        asked.append((question, default))
        return next(answers)

    assert main(_args(str(tmp_path / "fleet")), ask=ask) == 0
    assert [q for q, _ in asked] == [
        "Preset (solo, pair, forge, pipeline)",
        "Forge kind (github, gitea, gitlab)",
        "Its API root",
        "The repository (OWNER/NAME)",
        "The bot's login there",
    ]
    config = yaml.safe_load((tmp_path / "fleet" / "fleetwarden.yaml").read_text())
    assert config["forges"]["gitea"]["api_url"] == "https://git.example.org/api/v1"
    assert config["forges"]["gitea"]["login"] == "fleetwarden-bot"
    assert config["repos"]["app"]["url"] == "https://git.example.org/acme/app.git"


def test_a_gitlab_forge_is_gitlab_coms_unless_another_is_named(tmp_path: Path) -> None:
    """`--forge-kind gitlab` writes a GitLab entry on gitlab.com's API, cloned from there; a
    self-managed one's API root gives its host."""
    args = _args(str(tmp_path / "a"), "--preset", "forge", "--forge-kind", "gitlab")
    assert main(args) == 0
    config = yaml.safe_load((tmp_path / "a" / "fleetwarden.yaml").read_text())
    assert config["forges"]["gitlab"]["kind"] == "gitlab"
    assert config["forges"]["gitlab"]["api_url"] == "https://gitlab.com/api/v4"
    assert config["repos"]["app"]["url"] == "https://gitlab.com/acme/app.git"
    own = ("--forge-api", "https://git.example.org/api/v4", "--forge-repo", "acme/platform/app")
    assert (
        main(_args(str(tmp_path / "b"), "--preset", "forge", "--forge-kind", "gitlab", *own)) == 0
    )
    config = yaml.safe_load((tmp_path / "b" / "fleetwarden.yaml").read_text())
    assert config["repos"]["app"]["url"] == "https://git.example.org/acme/platform/app.git"
    assert config["repos"]["app"]["forge_repo"] == "acme/platform/app"


def test_a_preset_given_asks_nothing_else_for_a_preset_without_a_forge(tmp_path: Path) -> None:
    """`--preset solo` on a terminal asks nothing: everything else has its default."""

    def ask(question: str, default: str) -> str:
        raise AssertionError(f"asked {question!r}")

    assert main(_args(str(tmp_path), "--preset", "solo"), ask=ask) == 0
    assert (tmp_path / "roster.yaml").is_file()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_is_yaml_naming_its_roster_file(name: str) -> None:
    """Each preset's config reads as YAML with `agents: roster.yaml` and the offline note."""
    files = render(PRESETS[name], Answers())
    config = yaml.safe_load(files["fleetwarden.yaml"])
    assert config["agents"] == "roster.yaml" and config["enforce"] == "warn"
    assert "offline provider" in files["fleetwarden.yaml"]
    roster = yaml.safe_load(files["roster.yaml"])
    assert "coder" in [agent["name"] for agent in roster]


def test_an_unknown_preset_offers_the_nearest() -> None:
    """`pipline` is answered with 'pipeline'."""
    with pytest.raises(UnknownPreset, match="did you mean 'pipeline'"):
        preset_named("pipline")


def test_an_unknown_forge_kind_typed_is_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gitlob` typed for the forge's kind is answered with the kind meant and the question
    put again; the kind then typed is the one written."""
    asked: list[str] = []
    answers = iter(["forge", "gitlob", "gitlab", "", "", ""])

    def ask(question: str, default: str) -> str:
        asked.append(question)
        return next(answers)

    assert main(_args(str(tmp_path / "fleet")), ask=ask) == 0
    assert asked[1:3] == ["Forge kind (github, gitea, gitlab)"] * 2
    assert (
        "unknown forge kind 'gitlob': did you mean 'gitlab'? (kinds: github, gitea, gitlab)"
        in capsys.readouterr().err
    )
    config = yaml.safe_load((tmp_path / "fleet" / "fleetwarden.yaml").read_text())
    assert list(config["forges"]) == ["gitlab"]


def test_an_unknown_forge_kind_given_as_an_option_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forge kind outside the choices named on the command line is refused, exit 2, writing
    nothing (an option is not asked again)."""
    with pytest.raises(SystemExit) as exited:
        main(_args(str(tmp_path / "fleet"), "--preset", "forge", "--forge-kind", "gitlob"))
    assert exited.value.code == 2
    assert not (tmp_path / "fleet").exists()
    assert "invalid choice: 'gitlob'" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["fleet", "bot/cli", "connectors"])
def test_a_directory_inside_fleetwardens_own_code_is_refused_writing_nothing(
    where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`init fleet` in a checkout would write into the `fleet` package, whose folder the
    sandbox then keeps from every agent: refused, naming the folder, nothing written."""
    import bot.cli.init.command as command

    ours = Path(command.__file__).resolve().parents[3] / where
    before = sorted(p.name for p in ours.iterdir())
    assert main(_args(str(ours), "--preset", "solo")) == 1
    assert sorted(p.name for p in ours.iterdir()) == before
    said = capsys.readouterr().err
    assert "inside Fleetwarden's own code" in said and "fleetwarden init myfleet" in said
