import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


def port_from_environment() -> int:
    """``PORT`` (default 8000), as ``make run`` serves on it; anything but a port number is refused by name."""
    text = os.environ.get("PORT", "").strip() or "8000"
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise CommandError(f"PORT: must be a number from 1 to 65535, not {text!r}")
    return int(text)


class Command(BaseCommand):
    help = ("Create the local system administrator 'admin' once and print its login (for make run). "
            "The password is kept in var/admin-password.txt (JOBS_VAR_DIR); delete the file for a new one.")

    def handle(self, *args, **options) -> None:
        port = port_from_environment()
        password_file = settings.VAR_DIR / "admin-password.txt"
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            user = user or User(username="admin", email="admin@localhost")
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save()
            password_file.write_text(password)
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        self.stdout.write(f"Admin login: http://127.0.0.1:{port}/admin/  user: admin  password: {password}  "
                          f"(kept in {password_file})")
