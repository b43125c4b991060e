"""`roamclear rebuild`: the books cleared again from the topics (or the archive) into an
empty database, with the clearing agent's own code."""
