-- The archive keeps each submitted record uncompressed in its table page up to 8 kB.
-- depends: 0003_settlement
--
-- A typical CDR envelope is 2 to 4 kB, just above PostgreSQL's default threshold (about
-- 2 kB) at which it compresses a row with pglz before storing it. Compressing every archived
-- record cost more PostgreSQL CPU than anything else in a clearing batch (measured: about
-- 45 µs of the 70 µs an archived record cost), and the archive is written on the hot path
-- but read only for disputes and replays. Records above 8 kB are still compressed and moved
-- out of line as usual.
ALTER TABLE raw_event SET (toast_tuple_target = 8160);
