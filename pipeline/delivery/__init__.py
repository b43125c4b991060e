"""`roamclear deliver`: booked CDRs to their eMSPs over OCPI (docs/ocpi.md, "Delivery to
eMSPs"). `intake` turns the clearing worker's events into delivery rows, `dispatcher` POSTs
them, `app` is the faust app that runs both."""
