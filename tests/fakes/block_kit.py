"""A Block Kit checker for tests and the fake Slack API.

slack-sdk's block models validate some limits (``validate_json``) but not all of them (button
text and value, field length, unique ids), so the limits Slack enforces for the blocks
loopwatch sends are checked here explicitly. Returns Slack-style error strings (with a JSON
pointer) instead of raising, like Slack's ``invalid_blocks`` response.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

KNOWN_BLOCKS = {"section", "header", "context", "actions", "divider", "image", "rich_text", "input", "file", "video"}
TEXT_TYPES = {"plain_text", "mrkdwn"}


def _units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _text_errors(obj: Any, limit: int, where: str, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in TEXT_TYPES or not isinstance(obj.get("text"), str):
        return [f"[ERROR] must be a text object [json-pointer:{where}]"]
    if plain_only and obj["type"] != "plain_text":
        return [f"[ERROR] must be plain_text [json-pointer:{where}]"]
    if not obj["text"]:
        return [f"[ERROR] text must not be empty [json-pointer:{where}/text]"]
    if _units(obj["text"]) > limit:
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _element_errors(element: Any, where: str, action_ids: set[str]) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return [] if isinstance(element, dict) else [f"[ERROR] must be an object [json-pointer:{where}]"]
    errors = _text_errors(element.get("text"), 75, f"{where}/text", plain_only=True)
    action_id = element.get("action_id")
    if not isinstance(action_id, str) or not action_id or len(action_id) > 255:
        errors.append(f"[ERROR] action_id must be 1-255 characters [json-pointer:{where}/action_id]")
    elif action_id in action_ids:
        errors.append(f"[ERROR] action_id {action_id!r} is not unique [json-pointer:{where}/action_id]")
    else:
        action_ids.add(action_id)
    value = element.get("value")
    if value is not None and (not isinstance(value, str) or _units(value) > 2000):
        errors.append(f"[ERROR] value must be a string of at most 2000 characters [json-pointer:{where}/value]")
    url = element.get("url")
    if url is not None and (not isinstance(url, str) or _units(url) > 3000):
        errors.append(f"[ERROR] url must be at most 3000 characters [json-pointer:{where}/url]")
    if element.get("style") not in (None, "primary", "danger"):
        errors.append(f"[ERROR] style must be primary or danger [json-pointer:{where}/style]")
    return errors


def _block_errors(block: Any, where: str, action_ids: set[str]) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCKS:
        return [f"[ERROR] unknown block type [json-pointer:{where}]"]
    kind = block["type"]
    errors: list[str] = []
    if kind == "header":
        errors += _text_errors(block.get("text"), 150, f"{where}/text", plain_only=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"[ERROR] section needs text or fields [json-pointer:{where}]")
        if "text" in block:
            errors += _text_errors(block["text"], 3000, f"{where}/text")
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > 10:
            errors.append(f"[ERROR] at most 10 fields [json-pointer:{where}/fields]")
        else:
            for i, field in enumerate(fields):
                errors += _text_errors(field, 2000, f"{where}/fields/{i}")
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            errors.append(f"[ERROR] context needs 1-10 elements [json-pointer:{where}/elements]")
        else:
            for i, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") in TEXT_TYPES:
                    errors += _text_errors(element, 3000, f"{where}/elements/{i}")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            errors.append(f"[ERROR] actions needs 1-25 elements [json-pointer:{where}/elements]")
        else:
            for i, element in enumerate(elements):
                errors += _element_errors(element, f"{where}/elements/{i}", action_ids)
    if not errors:
        try:
            parsed = Block.parse(block)
            if parsed is not None:
                parsed.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError) as exc:
            errors.append(f"[ERROR] {exc} [json-pointer:{where}]")
    return errors


def block_kit_errors(blocks: Any) -> list[str]:
    """Every reason Slack would refuse ``blocks`` (empty list when they are acceptable)."""
    if not isinstance(blocks, list):
        return ["[ERROR] blocks must be an array [json-pointer:/blocks]"]
    if len(blocks) > 50:
        return ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]
    errors: list[str] = []
    action_ids: set[str] = set()
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        errors += _block_errors(block, where, action_ids)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255 or block_id in block_ids:
                errors.append(f"[ERROR] block_id must be unique and at most 255 characters [json-pointer:{where}]")
            else:
                block_ids.add(block_id)
    return errors
