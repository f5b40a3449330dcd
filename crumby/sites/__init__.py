"""Sites: the host names Crumby counts, each with its time zone and visibility."""

from crumby.sites.info import SiteInfo
from crumby.sites.registry import (
    Directory,
    SiteError,
    add_site,
    all_sites,
    change_site,
    check_timezone,
    count_rows,
    delete_site,
    find_site,
    fold_host,
    normalize_host,
)

__all__ = [
    "Directory",
    "SiteError",
    "SiteInfo",
    "add_site",
    "all_sites",
    "change_site",
    "check_timezone",
    "count_rows",
    "delete_site",
    "find_site",
    "fold_host",
    "normalize_host",
]
