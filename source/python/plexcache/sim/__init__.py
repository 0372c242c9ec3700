"""The embedded Plex simulator and sandbox Unraid tree used by `demo` and by the tests.

    from plexcache.sim import SimServer, load, build_tree
    with SimServer(load("world.yaml")) as sim:
        plex = PlexServer(sim.url, sim.owner_token, session=make_session())
"""

from __future__ import annotations

from plexcache.sim.scenario import Scenario, from_dict, load
from plexcache.sim.server import Request, SimServer, serve

__all__ = ["Request", "Scenario", "SimServer", "from_dict", "load", "serve"]
