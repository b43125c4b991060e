"""The clearing agent's shell: batches of cdr.submitted records through the settlement core
into PostgreSQL, and the resulting events onto roamclear.cdr.rated, .ledger.transactions and
.rejected."""
