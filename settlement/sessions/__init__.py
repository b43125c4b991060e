"""Sessions (OCPI 2.2.1 mod_sessions) and the CDR each completed one should end with.

- `document`: a session's key, and what a session document must be for the hub to keep it;
- `push`: a CPO's PUT or PATCH applied to the session as the hub holds it (pure);
- `decode`: a session.events record → a session version, or a rejection (pure);
- `missing`: which sessions lack their CDR past the deadline, and which went stale (pure).

Storage is in settlement.store (session_pushes, session_versions, missing_cdrs).
"""
