import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
application = get_wsgi_application()
# Every API module imported and every URL pattern compiled as the server
# process starts, not in its first requests: that took about a second of
# CPU, spent on whichever requests came first.
get_resolver().reverse_dict
