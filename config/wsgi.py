import os

from django.core.wsgi import get_wsgi_application

from config.env import settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
settings_or_exit()
application = get_wsgi_application()

from config.warmup import startup_objects_freeze, warm_up  # noqa: E402  (needs the apps loaded first)

warm_up()  # each web worker, as it boots: not in its first customer's request
startup_objects_freeze()
