"""Command groups of the `gateway` CLI, one module per concern, each with `register(app)`."""
