"""Stratus settings. Every value comes from the environment, with defaults
that run the all-in-one cloud from a fresh checkout."""
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STRATUS_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret(variable, file_name):
    """The environment's `variable`, else a random secret generated once
    into var/`file_name` (mode 0600) and read from there after. An empty
    value counts as none: an empty key would sign for anyone."""
    if os.environ.get(variable):
        return os.environ[variable]
    path = VAR_DIR / file_name
    if not path.exists():
        # Written aside and linked into place: processes starting at once
        # (gunicorn's workers) all read the one that won, never a partial file.
        temporary = path.with_name(f".{file_name}.{os.getpid()}")
        temporary.write_text(secrets.token_urlsafe(50))
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


SECRET_KEY = _secret("STRATUS_SECRET_KEY", "secret_key")
# Shared by the metadata proxies and the metadata API: a proxy signs the
# instance (or network and address) it asks for with it (HMAC-SHA256), as
# Neutron's metadata agent signs X-Instance-ID with Nova's shared secret.
METADATA_SECRET = _secret("STRATUS_METADATA_SECRET", "metadata_secret")
DEBUG = os.environ.get("STRATUS_DEBUG", "") == "1"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_celery_results",
    "cloud",
    "identity",
    "compute",
    "network",
    "images",
    "volumes",
    "objects",
    "dashboard",
    "workers.apps.WorkersConfig",
]

MIDDLEWARE = [
    "cloud.middleware.RequestIdMiddleware",
    "cloud.middleware.RequestTextMiddleware",
    # Security headers, common checks, sessions, CSRF, auth and messages for
    # browser pages; a short path of its own for API requests.
    "cloud.middleware.BrowserMiddleware",
    "cloud.middleware.ApiErrorMiddleware",
]
# OpenStack clients call both /v3/auth/tokens and /compute/v2.1/: URL
# patterns accept either form, so no redirecting.
APPEND_SLASH = False

ROOT_URLCONF = "cloud.urls"
WSGI_APPLICATION = "cloud.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'stratus.sqlite3'}"),
        conn_max_age=int(os.environ.get("STRATUS_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes share the all-in-one database: wait for locks, and
    # let readers run beside a writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Connections are kept across requests as PostgreSQL's are: opening one
    # (and its PRAGMAs) and closing it again cost more than a small request.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("STRATUS_REDIS_URL", "redis://127.0.0.1:6379")
CACHES = {
    "default": {
        "BACKEND": "cloud.cache.ReusingRedisCache",
        "LOCATION": f"{REDIS_URL}/1",
        # Several clouds (a developer's and the test run's) may share one Redis.
        "KEY_PREFIX": os.environ.get("STRATUS_CACHE_PREFIX", os.path.basename(str(DATABASES["default"]["NAME"]))),
    }
}

# Django's own users are the operators of the admin site; cloud users and
# their passwords live in identity.User.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
# The dashboard's live status: how long one Server-Sent Events stream lasts
# before the browser reconnects, and how often it looks for changes.
DASHBOARD_LIVE_SECONDS = float(os.environ.get("STRATUS_DASHBOARD_LIVE_SECONDS", "25"))
DASHBOARD_LIVE_INTERVAL = float(os.environ.get("STRATUS_DASHBOARD_LIVE_INTERVAL", "1"))
# Streams open at once per API process (each holds a thread); browsers past
# it poll every few seconds instead.
DASHBOARD_LIVE_STREAMS = int(os.environ.get("STRATUS_DASHBOARD_LIVE_STREAMS", "2"))
# Served over HTTPS (directly or behind a TLS proxy): cookies only over HTTPS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = os.environ.get("STRATUS_HTTPS", "") == "1"
STATIC_ROOT = VAR_DIR / "static"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["cloud.auth.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["cloud.policy.Policy"],
    "DEFAULT_RENDERER_CLASSES": ["cloud.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["cloud.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "cloud.negotiation.JsonAnswers",
    "EXCEPTION_HANDLER": "cloud.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}

# Celery: Redis as broker, results in the database.
CELERY_BROKER_URL = os.environ.get("STRATUS_BROKER_URL", f"{REDIS_URL}/0")
CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing rides out a broker restart of up to about 15 s before failing.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 30, "interval_start": 0, "interval_step": 0.5,
                                    "interval_max": 0.5}
CELERY_TASK_DEFAULT_QUEUE = "control"
# A message a worker took and never acknowledged (the worker died, or dropped
# it when its broker connection broke) goes back to its queue this many
# seconds after it was last renewed; live workers renew theirs
# (workers/broker.py). Every worker sweeps for such messages every 10 s.
BROKER_VISIBILITY_TIMEOUT = int(os.environ.get("STRATUS_BROKER_VISIBILITY_TIMEOUT", "60"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    # A sweeper that died holding the sweep lock blocks the others this long.
    "unacked_mutex_expire": 30,
}
CELERY_WORKER_CONSUMER = "workers.broker:Consumer"
if CELERY_BROKER_URL.startswith("redis://"):
    # Kombu's Redis transport, keeping a message taken as Redis went away.
    CELERY_BROKER_TRANSPORT = "workers.broker:RedisTransport"

# The API and its catalog.
API_PORT = int(os.environ.get("STRATUS_API_PORT", "8000"))
PUBLIC_URL = os.environ.get("STRATUS_PUBLIC_URL", f"http://127.0.0.1:{API_PORT}")


def _allowed_hosts():
    """The public URL's host, loopback, and STRATUS_ALLOWED_HOSTS (comma
    separated, e.g. a proxy's name): requests naming another Host are refused."""
    host = urlsplit(PUBLIC_URL).hostname or "127.0.0.1"
    hosts = [f"[{host}]" if ":" in host else host, "127.0.0.1", "localhost", "[::1]"]
    hosts += [name.strip() for name in os.environ.get("STRATUS_ALLOWED_HOSTS", "").split(",") if name.strip()]
    return list(dict.fromkeys(hosts))


ALLOWED_HOSTS = _allowed_hosts()
# Where the metadata proxies on the nodes forward guests' requests to.
METADATA_URL = os.environ.get("STRATUS_METADATA_URL", f"{PUBLIC_URL.rstrip('/')}/metadata")
REGION = os.environ.get("STRATUS_REGION", "RegionOne")
HOSTNAME = os.environ.get("STRATUS_HOST", socket.gethostname())

# Identity. Tokens are validated by this function on every request.
TOKEN_VALIDATOR = "identity.tokens.validate_token"
TOKEN_EXPIRATION = int(os.environ.get("STRATUS_TOKEN_EXPIRATION", str(3600 * 12)))
FERNET_KEY_DIR = Path(os.environ.get("STRATUS_FERNET_KEY_DIR", VAR_DIR / "fernet-keys"))
FERNET_MAX_ACTIVE_KEYS = int(os.environ.get("STRATUS_FERNET_MAX_ACTIVE_KEYS", "3"))
ADMIN_PASSWORD = os.environ.get("STRATUS_ADMIN_PASSWORD", "stratus-admin")
DEMO_PASSWORD = os.environ.get("STRATUS_DEMO_PASSWORD", "stratus-demo")
# Stratus's own user (project `service`): node workers call the APIs as it.
SERVICE_PASSWORD = os.environ.get("STRATUS_SERVICE_PASSWORD", "stratus-service")
# Work factor of the hash of cloud users' passwords (PBKDF2-SHA256).
PASSWORD_HASH_ITERATIONS = int(os.environ.get("STRATUS_PASSWORD_HASH_ITERATIONS", "100000"))
# Password rules (Keystone's [security_compliance]); all off by default, as there.
LOCKOUT_FAILURE_ATTEMPTS = int(os.environ.get("STRATUS_LOCKOUT_FAILURE_ATTEMPTS", "0"))  # 0: never locked
LOCKOUT_DURATION = int(os.environ.get("STRATUS_LOCKOUT_DURATION", "1800"))  # seconds
PASSWORD_EXPIRES_DAYS = int(os.environ.get("STRATUS_PASSWORD_EXPIRES_DAYS", "0"))  # 0: never expire
UNIQUE_LAST_PASSWORD_COUNT = int(os.environ.get("STRATUS_UNIQUE_LAST_PASSWORD_COUNT", "0"))
MINIMUM_PASSWORD_AGE = int(os.environ.get("STRATUS_MINIMUM_PASSWORD_AGE", "0"))  # days
PASSWORD_REGEX = os.environ.get("STRATUS_PASSWORD_REGEX") or None
PASSWORD_REGEX_DESCRIPTION = os.environ.get("STRATUS_PASSWORD_REGEX_DESCRIPTION") or None
CHANGE_PASSWORD_UPON_FIRST_USE = os.environ.get("STRATUS_CHANGE_PASSWORD_UPON_FIRST_USE", "") == "1"
# Users who have not authenticated for this many days are refused (0: never).
DISABLE_USER_ACCOUNT_DAYS_INACTIVE = int(os.environ.get("STRATUS_DISABLE_USER_ACCOUNT_DAYS_INACTIVE", "0"))
# OS-OAUTH1: how long a request token and an access token last (seconds).
OAUTH1_REQUEST_TOKEN_DURATION = int(os.environ.get("STRATUS_OAUTH1_REQUEST_TOKEN_DURATION", "28800"))
OAUTH1_ACCESS_TOKEN_DURATION = int(os.environ.get("STRATUS_OAUTH1_ACCESS_TOKEN_DURATION", "86400"))

# Images: where the filesystem store keeps image data, the node image cache,
# and the guest image `make guest-image` builds (registered as stratus-tiny).
IMAGE_STORE_DIR = Path(os.environ.get("STRATUS_IMAGE_STORE_DIR", VAR_DIR / "images" / "store"))
IMAGE_CACHE_DIR = Path(os.environ.get("STRATUS_IMAGE_CACHE_DIR", VAR_DIR / "images" / "cache"))
GUEST_IMAGE_PATH = Path(os.environ.get("STRATUS_GUEST_IMAGE_PATH", VAR_DIR / "images" / "stratus-tiny.qcow2"))
# Total bytes of image data one project may store; the node image cache's
# size past which unused images are evicted; Ceph RBD store when a ceph.conf
# is given.
IMAGE_QUOTA_BYTES = int(os.environ.get("STRATUS_IMAGE_QUOTA_BYTES", str(100 * 2**30)))
IMAGE_CACHE_MAX_BYTES = int(os.environ.get("STRATUS_IMAGE_CACHE_MAX_BYTES", str(20 * 2**30)))
IMAGE_DEFAULT_STORE = os.environ.get("STRATUS_IMAGE_DEFAULT_STORE", "file")
IMAGE_RBD_CEPH_CONF = os.environ.get("STRATUS_IMAGE_RBD_CEPH_CONF", "")
IMAGE_RBD_POOL = os.environ.get("STRATUS_IMAGE_RBD_POOL", "images")
# Images larger than this for a guest (their virtual size) are refused, at upload and on the nodes.
IMAGE_MAX_VIRTUAL_SIZE = int(os.environ.get("STRATUS_IMAGE_MAX_VIRTUAL_SIZE", str(4 * 2**40)))
# Seconds an upload may go without data before it counts as dead (its API process killed).
IMAGE_UPLOAD_STALE_AFTER = int(os.environ.get("STRATUS_IMAGE_UPLOAD_STALE_AFTER", "300"))
# The web-download import's allow-list: URL prefixes (http or https,
# whitespace-separated, e.g. "https://cloud-images.example.org/"), each
# matching its scheme, host and port exactly and paths under its path.
# Empty (the default): web-download is not offered at all.
IMAGE_IMPORT_ALLOWED_URLS = os.environ.get("STRATUS_IMAGE_IMPORT_ALLOWED_URLS", "").split()

# Objects (Swift): where the filesystem back end keeps object data.
OBJECT_DIR = Path(os.environ.get("STRATUS_OBJECT_DIR", VAR_DIR / "objects"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("STRATUS_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

SILENCED_SYSTEM_CHECKS = [
    # SQLite (all-in-one) cannot enforce uniqueness across NULL columns of
    # role assignments; the API looks before it writes, PostgreSQL enforces it too.
    "models.W047",
    # The admin site's checks look for sessions, auth and messages in
    # MIDDLEWARE by name; cloud.middleware.BrowserMiddleware runs them for it.
    "admin.E408", "admin.E409", "admin.E410",
]
