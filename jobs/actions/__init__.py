"""Built-in actions, one module each: ``core.shell``, ``core.sleep``, ``core.http``, ``core.management_command``.

Importing this package registers them (``jobs.registry.autodiscover`` imports every app's ``actions``).
"""
from .http import (
    MASK,
    HttpAnswer,
    RequestFailed,
    body_excerpt,
    call_cancellable,
    http_request,
    parse_expected_status,
    server_reachable,
    shown_url,
    status_accepted,
)
from .management import REFUSED_COMMANDS, LineWriter, management_command
from .shell import group_alive, shell, terminate_group
from .sleep import sleep

__all__ = [
    "MASK", "REFUSED_COMMANDS", "HttpAnswer", "LineWriter", "RequestFailed", "body_excerpt", "call_cancellable",
    "group_alive", "http_request", "management_command", "parse_expected_status",
    "server_reachable", "shell", "shown_url", "sleep", "status_accepted", "terminate_group",
]
