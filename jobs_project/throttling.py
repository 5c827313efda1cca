"""Brute force: wrong API tokens are counted per client address and, past the rate, answered 429.

DRF's own throttles run after authentication, so a wrong token (401) never reaches them: the count is
kept here, in the token authentication itself, in the shared cache (settings.CACHES), so every web
process counts together. The admin log-in is guarded by django-axes, which asks ``client_address``.
"""
from __future__ import annotations

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For as far as REST_FRAMEWORK["NUM_PROXIES"] trusts it."""
    return BaseThrottle().get_ident(request)


class FailedTokenThrottle(SimpleRateThrottle):
    """Wrong tokens from one address, at most REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["failed_token"]."""

    scope = "failed_token"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # read now, not at import (settings may change)

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def refuse_when_used_up(self, request) -> None:
        """Raise Throttled (429) when this address has used up its wrong tokens; count nothing."""
        if self.rate is None:
            return
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [at for at in self.cache.get(self.key, []) if at > self.now - self.duration]
        if len(self.history) >= self.num_requests:
            raise exceptions.Throttled(
                wait=self.wait(),
                detail=f"Too many wrong API tokens from this address ({self.rate}); try again later.",
            )

    def count_failure(self) -> None:
        if self.rate is not None:
            self.throttle_success()  # i.e. record this attempt in the window


class ThrottledTokenAuthentication(TokenAuthentication):
    """TokenAuthentication that counts wrong tokens per address and, past the rate, refuses even a right one."""

    def authenticate(self, request):
        if not self._presents_token(request):
            return None
        throttle = FailedTokenThrottle()
        throttle.refuse_when_used_up(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.count_failure()
            raise

    def _presents_token(self, request) -> bool:
        words = get_authorization_header(request).split()
        return bool(words) and words[0].lower() == self.keyword.lower().encode()
