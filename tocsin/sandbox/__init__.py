"""The sandbox internet on loopback: fake hosting providers, sites, RDAP and SMTP.

Used by the test suite and by ``tocsin demo``::

    from tocsin.sandbox import Sandbox

    with Sandbox(workdir) as sb:
        sb.write_config(path, database_url)
        sb.url("card-skimmer")  # http://shop.coastal-candles.com:41234/checkout/

The catalogue (:mod:`tocsin.sandbox.catalogue`) says what each site is and
what tocsin must conclude about it.
"""

from tocsin.sandbox.catalogue import (
    FAMILIES,
    KINDS,
    PROVIDERS,
    REGISTRARS,
    VERDICTS,
    Provider,
    Registrar,
    SiteSpec,
    catalogue,
)
from tocsin.sandbox.core import Sandbox, scale_sites

__all__ = [
    "FAMILIES",
    "KINDS",
    "PROVIDERS",
    "REGISTRARS",
    "VERDICTS",
    "Provider",
    "Registrar",
    "Sandbox",
    "SiteSpec",
    "catalogue",
    "scale_sites",
]
