"""lsops: the operations toolkit of the LongSang Admin AI Copilot API."""

import sys as _sys

__version__ = "0.1.0"

# jsonschema, which nbformat imports (so every lsops process that reads or writes a
# notebook), imports `rfc3987_syntax` when it is installed (jupyterlab's jupyter-events
# brings it), and that module compiles an Earley grammar at import: ~2.5 s of CPU in each
# process. It serves only jsonschema's "iri" format checks, which notebook validation never
# asks for, so lsops marks it absent. A copy already imported is left alone.
_sys.modules.setdefault("rfc3987_syntax", None)
