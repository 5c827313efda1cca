"""Settings for Jobs, read from the environment (see README "Configuration").

With no environment at all the embedded default runs: SQLite (WAL) and kombu's
filesystem broker, both under ``var/``. ``DATABASE_URL`` and ``CELERY_BROKER_URL``
switch to PostgreSQL and Redis.
"""
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("JOBS_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Off unless set: a forgotten setting must not serve tracebacks. `make run` and the tests set what they need.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off; e.g. "
        "SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(64))')\" "
        "(or DEBUG=true on a development machine)."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("JOBS_SITE_URL", default=f"http://127.0.0.1:{env.str('PORT', default='8000')}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_crontab",
    "axes",
    "csp",
    "jobs",
    "results",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "jobs_project.middleware.RefuseUnstorableText",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: it turns a lockout into its answer
]

ROOT_URLCONF = "jobs_project.urls"
WSGI_APPLICATION = "jobs_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "jobs.maintenance.banner_context",  # the "all schedules paused" banner of every admin page
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'jobs.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; IMMEDIATE transactions
    # take the write lock up front, so two writers queue instead of deadlocking.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file (not :memory:) so that the worker processes of the tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_jobs.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Lets results.statements.hot_cursor prepare the few statements every run executes (the ORM's own
        # client-side cursors never prepare); set DATABASE_PREPARED_STATEMENTS=0 behind a pooler that
        # cannot keep prepared statements (PgBouncer in transaction mode before 1.22).
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "admin:login"

# --- Celery -------------------------------------------------------------------
# jobsfs:// is kombu's filesystem transport made safe for several processes (jobs_project/broker.py).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="jobsfs://localhost//")
if CELERY_BROKER_URL.startswith(("filesystem://", "jobsfs://")):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder in and out: every process on this machine shares one queue.
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Outcomes live in JobResult; Celery's own result backend is not used.
CELERY_TASK_IGNORE_RESULT = True
# A message is acknowledged once its run has ended, so a lost host's message is
# delivered again; the runner's pending -> running claim makes that harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = env.str("JOBS_DEFAULT_QUEUE", default="celery")
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_WORKER_SEND_TASK_EVENTS = False
# Beat's scheduler (results.scheduler) also runs the reaper's sweep this often.
JOBS_REAPER_INTERVAL_SECONDS = env.float("JOBS_REAPER_INTERVAL_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "results.scheduler:JobsScheduler"

# For hosts that prefer system cron to beat: `python manage.py crontab add` installs
# this entry, which fires due schedules every minute (safe beside beat: a slot is
# claimed once). Beat stays the precise clock (sub-second); cron is minute-level.
CRONJOBS = [("* * * * *", "django.core.management.call_command", ["fire_schedules"])]

# --- Jobs ---------------------------------------------------------------------
JOBS_ACTION_MODULES = env.list("JOBS_ACTION_MODULES", default=[])
# Fernet keys of stored secrets (jobs.secrets): the first encrypts, all decrypt. Empty: derived from SECRET_KEY.
JOBS_SECRET_KEYS = env.list("JOBS_SECRET_KEYS", default=[])
# The only management commands core.management_command may run (set by system administrators).
JOBS_MANAGEMENT_COMMANDS = env.list("JOBS_MANAGEMENT_COMMANDS", default=[
    "check", "clearsessions", "createcachetable", "fire_schedules", "showmigrations", "sync_actions"])
# How often a running result proves its worker is alive, and when it is lost.
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=5.0)
JOBS_WORKER_LOST_SECONDS = env.float("JOBS_WORKER_LOST_SECONDS", default=20.0)
# How often the runner looks for a kill request, and how long a line may ignore it.
JOBS_KILL_POLL_SECONDS = env.float("JOBS_KILL_POLL_SECONDS", default=0.1)
JOBS_KILL_GRACE_SECONDS = env.float("JOBS_KILL_GRACE_SECONDS", default=2.0)
# A run that takes longer than its job's time limit (or this default; 0 = none) is killed.
JOBS_DEFAULT_TIME_LIMIT_SECONDS = env.int("JOBS_DEFAULT_TIME_LIMIT_SECONDS", default=24 * 3600)
# A pending result whose message was lost is published again after this long.
JOBS_REPUBLISH_AFTER_SECONDS = env.float("JOBS_REPUBLISH_AFTER_SECONDS", default=120.0)
# Beat looks at the schedules at least this often (edits take effect within it).
JOBS_SCHEDULER_POLL_SECONDS = env.float("JOBS_SCHEDULER_POLL_SECONDS", default=0.5)
# A slot later than this when fired was missed (beat was down): see Schedule.catch_up.
JOBS_SCHEDULE_MISSED_AFTER_SECONDS = env.float("JOBS_SCHEDULE_MISSED_AFTER_SECONDS", default=60.0)
# Log entries are written in batches of this many, or at least this often.
JOBS_LOG_BATCH_SIZE = env.int("JOBS_LOG_BATCH_SIZE", default=2000)
JOBS_LOG_FLUSH_SECONDS = env.float("JOBS_LOG_FLUSH_SECONDS", default=0.25)
JOBS_LOG_LINE_MAX_CHARS = env.int("JOBS_LOG_LINE_MAX_CHARS", default=10_000)
# Where core.http may connect (jobs/outbound.py), comma-separated: host names, *.example.com, IPs, CIDR
# networks, each with an optional :port ([::1]:8080). Empty: any public address. Not empty: only these
# (plus each domain's own list, edited by system administrators). Loopback, private and link-local
# addresses are refused unless listed by IP, network or exact host name. Environment proxies are not used.
JOBS_HTTP_ALLOWED_HOSTS = env.list("JOBS_HTTP_ALLOWED_HOSTS", default=[])

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "jobs_project.throttling.ThrottledTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["results.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "results.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Wrong tokens per client address (jobs_project.throttling): then 429 until the window has passed.
    "DEFAULT_THROTTLE_RATES": {"failed_token": env.str("JOBS_FAILED_TOKEN_RATE", default="10/min")},
    # Proxies in front that append to X-Forwarded-For; 0: the address is REMOTE_ADDR (the header is not trusted).
    "NUM_PROXIES": env.int("JOBS_PROXY_COUNT", default=0),
}

# --- E-mail -------------------------------------------------------------------
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="jobs@localhost")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)

# --- Production hardening (all on when DEBUG is off) ---------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is hard to undo (browsers ship the list): only when asked for.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "preload is off": a decision, not an oversight
# Trusting X-Forwarded-Proto is only safe behind a proxy that sets it, so only when named:
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
if _proxy_ssl_header := env.list("SECURE_PROXY_SSL_HEADER", default=[]):
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)

# --- Cache (shared by every process: the API's failed-token throttle counts there) ---
# Default: a table in the database (created by a migration), so web processes on
# several hosts count together; CACHE_URL=redis://host:6379/3 to use Redis instead.
CACHES = {"default": env.cache("CACHE_URL", default="dbcache://jobs_cache")}

# --- Brute force: admin log-in (django-axes) and API tokens (DRF throttle) ----
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out attempt before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# After AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
# locked out for AXES_COOLOFF_MINUTES (attempts are stored in the database: every process counts).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_ENABLE_ADMIN = False  # no admin pages of its own; unlock with `manage.py axes_reset_username NAME`
# The client's address, as the API throttle sees it (REST_FRAMEWORK["NUM_PROXIES"], env JOBS_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "jobs_project.throttling.client_address"

# --- Content-Security-Policy (django-csp): no inline script or style anywhere ---
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],  # as X-Frame-Options: DENY; nothing frames these pages
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    "loggers": {"jobs": {"level": "INFO"}, "results": {"level": "INFO"}},
}
