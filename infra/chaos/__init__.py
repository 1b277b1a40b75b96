"""`make chaos`: the reliability figures on the real local stack (see __main__.py)."""
