"""The API's JSON parser: DRF's, answering 400 (not 500) to a body nested too deeply to parse."""
from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # Python's json recurses once per nested list or object
            raise ParseError("JSON parse error - nested too deeply") from None
