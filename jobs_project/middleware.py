"""Request input no database stores (NUL, lone surrogates) answers 400 before any view sees it.

A NUL in a list filter, a search or an autocomplete term reached PostgreSQL
and answered 500. Here the path and every query and form parameter (names and
values) are checked once; JSON bodies are checked by the API's parser
(``results.parsers``) and JSON typed in admin fields by ``JSONTextField``.
"""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.html import format_html

from jobs.text import storable, text_problem

API_PREFIX = "/api/"


class RefuseUnstorableText:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = request_problem(request)
        if problem is not None:
            return bad_request(request, *problem)
        return self.get_response(request)


def request_problem(request: HttpRequest) -> tuple[str, str] | None:
    """(the parameter, the rule it breaks) for the first bad piece of input, or None."""
    problem = text_problem(request.path)
    if problem:
        return "path", problem
    sources = [request.GET]
    # Forms (the admin's). The API takes JSON only, checked by its parser: reading a form body here would
    # hide it from DRF, which must refuse it (415).
    if request.method == "POST" and not _is_api(request):
        sources.append(request.POST)
    for source in sources:
        for name, values in source.lists():
            problem = text_problem(name) or next(filter(None, map(text_problem, values)), None)
            if problem:
                return storable(name), problem
    return None


def bad_request(request: HttpRequest, name: str, rule: str) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"errors": {name: [rule]}}, status=400)
    return HttpResponseBadRequest(format_html("<h1>Bad Request (400)</h1><p>{}: {}</p>", name, rule))


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)
