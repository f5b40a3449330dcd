"""Crumby for Apache mod_wsgi: ``WSGIScriptAlias / /path/to/deployment/crumby.wsgi``.

This file exposes ``application``, a Crumby (Flask) app built once per
process. See deployment/apache/crumby.conf for a complete virtual host.

Settings: CRUMBY_SETTINGS names the settings file. mod_wsgi's daemon
processes inherit the environment Apache was started with, so on Debian put
``export CRUMBY_SETTINGS=/etc/crumby/crumby.cfg`` in /etc/apache2/envvars
(``SetEnv`` does not work: it only reaches each request, not os.environ).
Without it, /etc/crumby/crumby.cfg is used when it exists, else the built-in
defaults. CRUMBY_<KEY> variables work the same way.

Python: the crumby package must be importable by mod_wsgi's Python. Point
``python-home`` at a virtualenv made with the same Python mod_wsgi was built
for (Debian: /usr/bin/python3), or ``python-path`` at a site-packages folder
holding crumby. As a last resort this file adds the checkout it lives in.
"""

import os
import sys

DEFAULT_SETTINGS = "/etc/crumby/crumby.cfg"

if "CRUMBY_SETTINGS" not in os.environ and os.path.isfile(DEFAULT_SETTINGS):
    os.environ["CRUMBY_SETTINGS"] = DEFAULT_SETTINGS

try:
    import crumby
except ImportError:  # running from a checkout that was never pip-installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import crumby

application = crumby.create_app()
