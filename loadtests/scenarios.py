"""Named mixes of shoppers: which user classes of the locustfile run, and their weights."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """A mix of user classes (name → weight) and the load shape it runs by default."""

    name: str
    users: dict[str, int]
    default_shape: str
    description: str


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("browse", {"Browser": 1}, "steady", "catalog browsing only"),
        Scenario("flash-sale", {"FlashSaleBuyer": 4, "Browser": 1}, "flash-sale",
                 "buyers hammer the hot product and check out; a few browsers"),
        Scenario("checkout", {"RegularCustomer": 1}, "steady",
                 "signed-in customers: cart, checkout, order history"),
        Scenario("mixed", {"Browser": 5, "RegularCustomer": 3, "AccountHolder": 1}, "steady",
                 "browsing, customers and one account holder logging in every 2.2 s"),
        Scenario("hot-reads", {"HotProductWatcher": 1}, "flash-sale",
                 "closed loop: everyone refreshes the hot product (the scaling test)"),
        Scenario("catalog", {"CatalogReader": 1}, "rate",
                 "open loop: hot product reads paced to a fixed offered rate"),
    )
}


def scenario(name: str) -> Scenario:
    """The scenario called `name`, or ValueError listing the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
