"""Development tooling that is not part of a training or evaluation run: mutation testing (:mod:`.mutation`) and the
README's method × backbone matrix (:mod:`.support_matrix`)."""
