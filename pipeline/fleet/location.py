"""The code location `dagster dev` and `smsseg ui` load (pyproject's [tool.dagster]): one shop, or many.

Called when Dagster loads the location, not at import: a bad setting in the environment is reported there,
naming it, and importing this module never fails.
"""

import dagster as dg

from pipeline.definitions import build_definitions
from pipeline.fleet.definitions import build_fleet_definitions
from pipeline.settings import Settings


@dg.definitions
def defs() -> dg.Definitions:
    """With SMSSEG_SHOPS, the shops' nights (shop_night by shop and day, shops_nightly); else the one shop's."""
    settings = Settings.resolve()
    if settings.shops_file:
        return build_fleet_definitions(settings.shops_file, settings)
    return build_definitions(settings)
