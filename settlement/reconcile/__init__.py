"""Reconciling a partner's own CDR list with the hub's ledger (`roamclear reconcile`), pure:
the file parsed (partner_file), period labels (periods), the two sides matched and classified
(match, model), the CSV report (report). settlement.store.reconcile reads the hub's side."""
