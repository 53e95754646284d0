"""Quirks: named switches that make the reference server reproduce one real-world deviation each.

`conformance serve --quirk NAME` (several at once), `ReferenceServer(quirks=...)`, and the
`--server-quirk` option of the pytest plugin turn the server into a mutant.  The self-tests run
the suite against every quirk: each check must fail on at least one, and each quirk must be
caught by a check of the feature it breaks (`features`).  `verdicts` says which parameter
verdict (endpoint.parameter -> verdict) the quirk must produce.

Variations are the opposite: legal differences from the reference's own output (CRLF line
ends, keep-alive comments, ...) that the suite must never flag.

Quirks are a layer of their own around the plain reference (validate, generate, render): each
is declared once, in declared.py, with what it changes (base.py: Behaviour fields and seams);
layer.py composes a server's quirks.  The reference never imports this package.
"""

from .base import SEAMS, Quirk
from .declared import NAMED, VARIATIONS
from .layer import Layer, check_names, registry

__all__ = ["Quirk", "SEAMS", "NAMED", "VARIATIONS", "Layer", "registry", "check_names"]
