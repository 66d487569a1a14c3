"""Service functions of the connectors app: the logic that views, admin and commands call."""
