"""The one exception type a user sees.

Anything the user can cause (a missing file, a hostile checkpoint, a grid too large, a NaN at the centre) raises
`LandscapeError` with a one-line reason. The CLI prints it as `error: <reason>` and exits 1; the dashboard shows it
in an error box. Everything else is a bug and may surface as a traceback.
"""


class LandscapeError(Exception):
    """A user-facing failure with a one-line, plain-language reason."""
