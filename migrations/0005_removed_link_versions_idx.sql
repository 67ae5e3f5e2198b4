-- Finds the versions of removed memberships and permissions by the time of their removal, for
-- pruning them with the retention window. Partial, and on columns that change only when a link
-- is removed: an index on source_time would change with every event and so stop Postgres from
-- updating versions in place (HOT), costing index writes on every webhook.
create index versions_removed_links_idx on stack_sync.versions (removed_at)
    where deleted and kind not in ('user', 'team');
