"""Who-may questions for templates, answered by ``jobs.access``."""
from django import template

from jobs import access

register = template.Library()


@register.filter
def is_member(user) -> bool:
    """A system administrator or a member of some domain: someone with runs to watch."""
    return access.is_member(user)
