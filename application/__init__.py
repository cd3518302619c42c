"""The use cases of loopwatch, in one place: register a model, apply monitors, run and backfill
them, acknowledge and silence alerts, route samples, build datasets, seal and verify the store,
read the audit log.

Both the HTTP API (``api/routes``) and the command line (``api/cli.py`` through
``api/local.py``) call these classes, so an operation behaves the same whichever way it is
asked for: routes and commands only translate requests and print answers. Each use case records
who did it in the audit log. Parts that exist only in a running server (the scheduler, the alert
pipeline's dispatcher, Label Studio sync) are optional collaborators: without them a use case
still changes the stored state and says what it could not do.
"""

from application.app import Application

__all__ = ["Application"]
