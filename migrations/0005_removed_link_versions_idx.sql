-- Finds the versions of removed memberships and permissions by age, for pruning them with the
-- retention window. Partial: live links and user and team tombstones (kept forever) are not in
-- it, so it costs a write only when a link is removed.
create index versions_removed_links_idx on stack_sync.versions (source_time)
    where deleted and kind not in ('user', 'team');
