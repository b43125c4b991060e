"""faust agents: thin; each decodes, calls one function, produces or persists."""
