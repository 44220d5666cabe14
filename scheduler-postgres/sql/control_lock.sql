-- A change of a control, first step: the control ($2) read and locked, with
-- the store time `ControlChange::apply` is applied at. The lock keeps a
-- concurrent change (another replica advancing the same backfill, an
-- operator cancelling it) from slipping in before control_update.sql writes.
SELECT {control_columns}, {now} AS store_now FROM {controls} WHERE id = $2 FOR UPDATE
