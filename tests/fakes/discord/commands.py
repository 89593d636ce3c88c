"""Slash commands in the fake Discord: the bot's bulk overwrite of its guild commands,
checked and stored as ApplicationCommand objects.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.discord.guild import GuildState
from tests.fakes.discord.records import Json
from tests.fakes.discord.wire import (
    CHAT_INPUT,
    COMMAND_NAME,
    GUILD_INSTALL,
    MAX_COMMAND_DESCRIPTION,
    MAX_COMMAND_OPTIONS,
    _error,
    _field_error,
    _invalid_form,
    _json,
    _too_long,
)


class Commands(GuildState):
    """GET and PUT /applications/{app}/guilds/{guild}/commands, as Discord checks them."""

    async def _commands(self, request: web.Request, parts: list[str]) -> web.Response:
        """GET and PUT (bulk overwrite) /applications/{app}/guilds/{guild}/commands."""
        if len(parts) != 5 or parts[2] != "guilds" or parts[4] != "commands":
            return _error(404, "404: Not Found", 0)
        if parts[1] != str(self.application_id) or parts[3] != str(self.guild_id):
            return _error(403, "Missing Access", 50001)
        if request.method == "GET":
            return _json(self.guild_commands)
        if request.method == "PUT":
            return self._overwrite_commands(await request.json())
        return _error(405, "405: Method Not Allowed", 0)

    def _overwrite_commands(self, body: Any) -> web.Response:
        """Replace the guild's commands; one kept by name and type keeps its id, and its
        version unless it changed, as on Discord."""
        if not isinstance(body, list):
            return _invalid_form(_field_error("LIST_TYPE_CONVERT", "Only iterables may be used."))
        errors: Json = {}
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(body):
            found = self._command_errors(command)
            key = (str(command.get("name")), int(command.get("type") or CHAT_INPUT))
            if key in seen and "name" not in found:
                message = "Application command names must be unique"
                found["name"] = _field_error("APPLICATION_COMMANDS_DUPLICATE_NAME", message)
            seen.add(key)
            if found:
                errors[str(index)] = found
        if errors:
            return _invalid_form(errors)
        previous = {(c["name"], c["type"]): c for c in self.guild_commands}
        commands: list[Json] = []
        for command in body:
            kind = int(command.get("type") or CHAT_INPUT)
            stored: Json = {
                "id": str(self._snowflake()),
                "application_id": str(self.application_id),
                "version": "",
                "default_member_permissions": command.get("default_member_permissions"),
                "type": kind,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": str(command.get("description") or ""),
                "description_localizations": command.get("description_localizations"),
                "guild_id": str(self.guild_id),
                "nsfw": bool(command.get("nsfw", False)),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types") or [GUILD_INSTALL],
            }
            if command.get("options"):
                stored["options"] = json.loads(json.dumps(command["options"]))
            old = previous.get((stored["name"], kind))
            unchanged = old is not None and all(
                old.get(k) == v for k, v in stored.items() if k not in ("id", "version")
            )
            if old is not None:
                stored["id"] = old["id"]
            stored["version"] = old["version"] if old and unchanged else str(self._snowflake())
            commands.append(stored)
        self.guild_commands = commands
        return _json(commands)

    def _command_errors(self, command: Any) -> Json:
        """50035 errors for one command: names, descriptions and options as Discord checks."""
        if not isinstance(command, dict):
            return _field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        errors: Json = {}
        chat_input = int(command.get("type") or CHAT_INPUT) == CHAT_INPUT
        self._check_name_and_description(command, errors, need_description=chat_input)
        options = command.get("options") or []
        if len(options) > MAX_COMMAND_OPTIONS:
            errors["options"] = _too_long(MAX_COMMAND_OPTIONS)
            return errors
        for index, option in enumerate(options):
            found: Json = {}
            self._check_name_and_description(option, found, need_description=True)
            if found:
                errors.setdefault("options", {})[str(index)] = found
        return errors

    def _check_name_and_description(
        self, item: Json, errors: Json, *, need_description: bool
    ) -> None:
        name = item.get("name")
        if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name) or name != name.lower():
            message = "Command name is invalid"
            errors["name"] = _field_error("APPLICATION_COMMAND_INVALID_NAME", message)
        description = str(item.get("description") or "")
        if need_description and not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION:
            message = f"Must be between 1 and {MAX_COMMAND_DESCRIPTION} in length."
            errors["description"] = _field_error("BASE_TYPE_BAD_LENGTH", message)
