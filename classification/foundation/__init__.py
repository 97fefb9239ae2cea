"""What every other layer builds on and that imports nothing of ours but itself: errors (``UserError``,
``run_tool``), atomic (atomic writes; importing it registers the ``atomic_local`` file backend), checkpoints (strict
and weights-only loading), checkpoint_sources (external checkpoint layouts), host (``ROOT``, threads, loader workers,
the machine description).
"""
