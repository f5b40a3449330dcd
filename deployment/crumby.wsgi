"""Apache mod_wsgi entry point: ``WSGIScriptAlias / /path/to/deployment/crumby.wsgi``.

Set CRUMBY_SETTINGS in the Apache configuration (SetEnv does not reach
os.environ under mod_wsgi, so the default below reads it from a file path you
may edit) or export it in the service's environment.
"""

import os

os.environ.setdefault("CRUMBY_SETTINGS", "/etc/crumby/crumby.cfg")

from crumby import create_app  # noqa: E402

application = create_app()
