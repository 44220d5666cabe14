-- Store time, for `LeaseStore::now`.
SELECT {now}
