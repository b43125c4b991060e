"""Delivering booked CDRs to their eMSPs: what is sent (document), when it is tried again
(retry) and what an eMSP's answer means (answer). Pure: the store and the dispatcher do the
I/O (settlement.store.deliveries, pipeline.delivery)."""
