"""Pages composed of panels from several apps (DESIGN 3): the page shell lists the panels
registered for it and loads each from its own app's URL, so no app imports one above it.

An app registers its panels in AppConfig.ready(): `panel_register("customer-360",
"loyalty:customer-panel", Perm.LOYALTY_VIEW)`. A panel URL for the customer 360 takes the
customer's id; a dashboard panel takes none.
"""

from __future__ import annotations

from dataclasses import dataclass

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
