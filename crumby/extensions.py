"""Flask extensions, created once and bound to each app by ``create_app``."""

from __future__ import annotations

from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base shared by every Crumby model."""


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
