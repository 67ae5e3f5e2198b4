-- Bodies of user and team events are stored compressed with zstd, about half their bytes on disk
-- and in the WAL (see BENCHMARKS.md). payload_encoding says how payload holds the body: null,
-- byte for byte as received; 'zstd', a zstd frame of it. Rows recorded before keep null.
alter table stack.webhook_events add column payload_encoding text
    check (payload_encoding in ('zstd'));
comment on column stack.webhook_events.payload_encoding is
    'null: payload is the body as received; zstd: payload is the body compressed with zstd';
