"""Pages composed of panels from several apps (docs/architecture.md): the page shell lists the
panels registered for it and loads each from its own app's URL, so no app imports one
above it.

An app registers its panels in AppConfig.ready(): `panel_register("customer-360",
"loyalty:customer-panel", Perm.LOYALTY_VIEW)`. A panel URL for the customer 360 takes the
customer's id; a dashboard panel takes none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

from merchants.roles import Perm


@dataclass(frozen=True)
class Panel:
    page: str
    url_name: str
    permission: Perm
    order: int


_panels: list[Panel] = []


def panel_register(page: str, url_name: str, permission: Perm, order: int = 100) -> None:
    panel = Panel(page=page, url_name=url_name, permission=permission, order=order)
    if panel not in _panels:
        _panels.append(panel)


def panels_for(page: str, granted) -> list[Panel]:
    """The page's panels the role (with these permissions) may see, in order."""
    granted = {str(perm) for perm in granted}
    return sorted(
        (p for p in _panels if p.page == page and str(p.permission) in granted),
        key=lambda p: (p.order, p.url_name),
    )


# --- The rewards page ----------------------------------------------------------------
# The customer's rewards page (docs/architecture.md) is composed the same way, but its panels render
# in the same request: a phone shouldn't wait for a round trip per panel. A panel is a
# function of the request (which carries `portal_merchant` and `portal_customer`) that
# returns its HTML, or "" when it has nothing to show. Each is also served alone at
# `/r/<merchant>/panels/<name>/`, so an htmx form can swap its own panel.


@dataclass(frozen=True)
class PortalPanel:
    name: str
    render: Callable[[HttpRequest], str]
    order: int


_portal_panels: dict[str, PortalPanel] = {}


def portal_panel_register(name: str, render: Callable[[HttpRequest], str], order: int = 100):
    _portal_panels[name] = PortalPanel(name=name, render=render, order=order)


def portal_panels() -> list[PortalPanel]:
    return sorted(_portal_panels.values(), key=lambda p: (p.order, p.name))


def portal_panel(name: str) -> PortalPanel | None:
    return _portal_panels.get(name)
