import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the local system administrator 'admin' once and print its login (for make run)."

    def handle(self, *args, **options) -> None:
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
        self.stdout.write(f"Admin login: http://127.0.0.1:8000/admin/  user: admin  password: {password}")
