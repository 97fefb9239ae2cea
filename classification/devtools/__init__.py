"""Development tooling that is not part of a training or evaluation run: mutation testing (:mod:`.mutation`)."""
