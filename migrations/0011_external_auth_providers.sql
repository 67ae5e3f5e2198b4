-- Hexclave's user object has carried `external_auth_providers` (`[{id}]`, for users created
-- through external authentication) since April 2026. It was kept in `raw` until now; rows that
-- have it get the column from there, so that nothing waits for the next update or reconcile.
alter table stack.users add column external_auth_providers jsonb;

update stack.users
set external_auth_providers = raw -> 'external_auth_providers'
where jsonb_typeof(raw -> 'external_auth_providers') = 'array';
