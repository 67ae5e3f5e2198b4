-- Convergence under real delivery: Svix delivers at least once, in no guaranteed order, and
-- retries hours late. Every event now carries a source time (decoded from its Svix message id);
-- an event older than what the mirror already knows about the same row changes nothing, and
-- deleted users and teams are remembered so that late events cannot bring them back.
--
-- The logic lives in the functions below so that one event is still one round trip, and so
-- that each step can take the locks it needs and then see the latest committed state (every
-- statement of a plpgsql function takes a fresh snapshot under read committed).

create schema if not exists stack_sync;

alter table stack.webhook_events drop constraint webhook_events_outcome_check;
-- unchanged: the payload equals what the mirror holds (Stack sent the same change twice);
-- stale: the mirror already reflects a newer event for the same row, or the row was deleted
alter table stack.webhook_events add constraint webhook_events_outcome_check
    check (outcome in ('applied', 'unchanged', 'stale', 'ignored', 'failed'));
-- when Svix created the message (from its id); arrival time for ids that do not decode
alter table stack.webhook_events add column source_time timestamptz;
create index webhook_events_source_time_idx on stack.webhook_events (source_time);

-- The newest event known for each mirrored row, present or deleted. Kept apart from the mirror
-- tables so that an event repeating the current content writes nothing the app can see.
create table stack_sync.versions (
    -- user, team, team_member, team_permission, project_permission
    kind        text not null,
    -- the row's id; for links the ids joined with '/': team/user, team/user/permission,
    -- user/permission (uuids have a fixed length, so the permission id may contain anything)
    key         text not null,
    source_time timestamptz not null,
    -- for users and teams a tombstone: Stack never reuses ids, so nothing revives them
    deleted     boolean not null,
    -- the newest removal ever seen, even one older than the current state: a membership's
    -- removal also removed the permissions granted before it, whatever happened after
    removed_at  timestamptz,
    svix_id     text not null,
    primary key (kind, key)
);

-- Deleted users and teams, for apps that need to know (e.g. to purge their own data).
create view stack.deleted_users as
    select key::uuid as id, source_time as deleted_at, svix_id
    from stack_sync.versions where kind = 'user' and deleted;
create view stack.deleted_teams as
    select key::uuid as id, source_time as deleted_at, svix_id
    from stack_sync.versions where kind = 'team' and deleted;

-- Serializes events touching the same users or teams, in id order so two events never wait on
-- each other crosswise. Held until commit.
create function stack_sync.lock_ids(variadic p_ids uuid[]) returns void
language plpgsql as $$
begin
    perform pg_advisory_xact_lock(hashtextextended(id::text, 0))
    from (select distinct id from unnest(p_ids) as id order by id) as ids;
end;
$$;

-- The user and team ids an event is about, for stack_sync.lock_ids.
create function stack_sync.ids_of(p_event_type text, p_data jsonb) returns uuid[]
language sql immutable as $$
    select array_remove(array[
        coalesce(p_data ->> 'user_id',
                 case when p_event_type like 'user.%' then p_data ->> 'id' end)::uuid,
        coalesce(p_data ->> 'team_id',
                 case when p_event_type like 'team.%' then p_data ->> 'id' end)::uuid
    ], null);
$$;

create function stack_sync.is_deleted(p_kind text, p_key text) returns boolean
language sql stable as $$
    select exists (
        select 1 from stack_sync.versions where kind = p_kind and key = p_key and deleted
    );
$$;

-- Moves a row's version to an event at p_time unless a newer event is known; ties go to the
-- later arrival. A removal's time is noted even when it is stale. Returns whether it moved.
create function stack_sync.advance(
    p_kind text, p_key text, p_time timestamptz, p_deleted boolean, p_svix_id text
) returns boolean
language plpgsql as $$
declare
    v_moved boolean;
begin
    insert into stack_sync.versions as v (kind, key, source_time, deleted, removed_at, svix_id)
    values (p_kind, p_key, p_time, p_deleted, case when p_deleted then p_time end, p_svix_id)
    on conflict (kind, key) do update
    set removed_at = greatest(v.removed_at, excluded.removed_at),
        deleted = case when v.source_time <= excluded.source_time
                       then excluded.deleted else v.deleted end,
        svix_id = case when v.source_time <= excluded.source_time
                       then excluded.svix_id else v.svix_id end,
        source_time = greatest(v.source_time, excluded.source_time)
    returning v.svix_id = p_svix_id into v_moved;
    return v_moved;
end;
$$;

-- Marks a user or team deleted for good, whatever the event's time: Stack dispatches webhooks
-- asynchronously, so a deletion's message can be older than an update committed before it.
create function stack_sync.bury(p_kind text, p_key text, p_time timestamptz, p_svix_id text)
returns boolean
language plpgsql as $$
declare
    v_buried boolean;
begin
    insert into stack_sync.versions as v (kind, key, source_time, deleted, removed_at, svix_id)
    values (p_kind, p_key, p_time, true, p_time, p_svix_id)
    on conflict (kind, key) do update
    set source_time = greatest(v.source_time, excluded.source_time),
        deleted = true,
        removed_at = excluded.removed_at,
        svix_id = excluded.svix_id
    where not v.deleted
    returning true into v_buried;
    return coalesce(v_buried, false);
end;
$$;

create function stack_sync.millis_to_time(p_millis jsonb) returns timestamptz
language sql immutable as $$
    select timestamptz 'epoch' + (p_millis #>> '{}')::bigint * interval '1 millisecond';
$$;

-- JSON null becomes SQL null, so `is null` works on jsonb columns.
create function stack_sync.json_or_null(p_value jsonb) returns jsonb
language sql immutable as $$
    select nullif(p_value, 'null'::jsonb);
$$;

-- Writes a user row from a Stack user object unless it holds exactly that already.
-- Returns 'applied' or 'unchanged'.
create function stack_sync.write_user(p_data jsonb, p_svix_id text) returns text
language plpgsql as $$
declare
    v_written boolean;
begin
    insert into stack.users as u (
        id, display_name, primary_email, primary_email_verified, primary_email_auth_enabled,
        profile_image_url, signed_up_at, client_metadata, client_read_only_metadata,
        server_metadata, has_password, otp_auth_enabled, auth_with_email, requires_totp_mfa,
        passkey_auth_enabled, oauth_providers, selected_team_id, selected_team, last_active_at,
        is_anonymous, is_restricted, restricted_reason, restricted_by_admin,
        restricted_by_admin_reason, restricted_by_admin_private_details, country_code,
        risk_scores, raw, svix_id
    ) values (
        (p_data ->> 'id')::uuid,
        p_data ->> 'display_name',
        p_data ->> 'primary_email',
        (p_data ->> 'primary_email_verified')::boolean,
        (p_data ->> 'primary_email_auth_enabled')::boolean,
        p_data ->> 'profile_image_url',
        stack_sync.millis_to_time(p_data -> 'signed_up_at_millis'),
        stack_sync.json_or_null(p_data -> 'client_metadata'),
        stack_sync.json_or_null(p_data -> 'client_read_only_metadata'),
        stack_sync.json_or_null(p_data -> 'server_metadata'),
        (p_data ->> 'has_password')::boolean,
        (p_data ->> 'otp_auth_enabled')::boolean,
        (p_data ->> 'auth_with_email')::boolean,
        (p_data ->> 'requires_totp_mfa')::boolean,
        (p_data ->> 'passkey_auth_enabled')::boolean,
        stack_sync.json_or_null(p_data -> 'oauth_providers'),
        (p_data ->> 'selected_team_id')::uuid,
        stack_sync.json_or_null(p_data -> 'selected_team'),
        stack_sync.millis_to_time(p_data -> 'last_active_at_millis'),
        (p_data ->> 'is_anonymous')::boolean,
        (p_data ->> 'is_restricted')::boolean,
        stack_sync.json_or_null(p_data -> 'restricted_reason'),
        (p_data ->> 'restricted_by_admin')::boolean,
        p_data ->> 'restricted_by_admin_reason',
        p_data ->> 'restricted_by_admin_private_details',
        p_data ->> 'country_code',
        stack_sync.json_or_null(p_data -> 'risk_scores'),
        p_data,
        p_svix_id
    )
    on conflict (id) do update set
        display_name = excluded.display_name,
        primary_email = excluded.primary_email,
        primary_email_verified = excluded.primary_email_verified,
        primary_email_auth_enabled = excluded.primary_email_auth_enabled,
        profile_image_url = excluded.profile_image_url,
        signed_up_at = excluded.signed_up_at,
        client_metadata = excluded.client_metadata,
        client_read_only_metadata = excluded.client_read_only_metadata,
        server_metadata = excluded.server_metadata,
        has_password = excluded.has_password,
        otp_auth_enabled = excluded.otp_auth_enabled,
        auth_with_email = excluded.auth_with_email,
        requires_totp_mfa = excluded.requires_totp_mfa,
        passkey_auth_enabled = excluded.passkey_auth_enabled,
        oauth_providers = excluded.oauth_providers,
        selected_team_id = excluded.selected_team_id,
        selected_team = excluded.selected_team,
        last_active_at = excluded.last_active_at,
        is_anonymous = excluded.is_anonymous,
        is_restricted = excluded.is_restricted,
        restricted_reason = excluded.restricted_reason,
        restricted_by_admin = excluded.restricted_by_admin,
        restricted_by_admin_reason = excluded.restricted_by_admin_reason,
        restricted_by_admin_private_details = excluded.restricted_by_admin_private_details,
        country_code = excluded.country_code,
        risk_scores = excluded.risk_scores,
        raw = excluded.raw,
        synced_at = now(),
        svix_id = excluded.svix_id
    where u.raw is distinct from excluded.raw
    returning true into v_written;
    return case when v_written then 'applied' else 'unchanged' end;
end;
$$;

-- Writes a team row from a Stack team object unless it holds exactly that already.
create function stack_sync.write_team(p_data jsonb, p_svix_id text) returns text
language plpgsql as $$
declare
    v_written boolean;
begin
    insert into stack.teams as t (
        id, display_name, profile_image_url, created_at, client_metadata,
        client_read_only_metadata, server_metadata, raw, svix_id
    ) values (
        (p_data ->> 'id')::uuid,
        p_data ->> 'display_name',
        p_data ->> 'profile_image_url',
        stack_sync.millis_to_time(p_data -> 'created_at_millis'),
        stack_sync.json_or_null(p_data -> 'client_metadata'),
        stack_sync.json_or_null(p_data -> 'client_read_only_metadata'),
        stack_sync.json_or_null(p_data -> 'server_metadata'),
        p_data,
        p_svix_id
    )
    on conflict (id) do update set
        display_name = excluded.display_name,
        profile_image_url = excluded.profile_image_url,
        created_at = excluded.created_at,
        client_metadata = excluded.client_metadata,
        client_read_only_metadata = excluded.client_read_only_metadata,
        server_metadata = excluded.server_metadata,
        raw = excluded.raw,
        synced_at = now(),
        svix_id = excluded.svix_id
    where t.raw is distinct from excluded.raw
    returning true into v_written;
    return case when v_written then 'applied' else 'unchanged' end;
end;
$$;

-- What an event does to the mirror, by type, given that it is new and holds the locks.
-- Returns 'applied', 'unchanged' or 'stale'.
create function stack_sync.change_mirror(
    p_event_type text, p_data jsonb, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_user_id uuid;
    v_team_id uuid := (p_data ->> 'team_id')::uuid;
begin
    case p_event_type
    when 'user.created', 'user.updated' then
        v_user_id := (p_data ->> 'id')::uuid;
        if stack_sync.is_deleted('user', v_user_id::text)
            or not stack_sync.advance('user', v_user_id::text, p_time, false, p_svix_id) then
            return 'stale';
        end if;
        return stack_sync.write_user(p_data, p_svix_id);
    when 'user.deleted' then
        v_user_id := (p_data ->> 'id')::uuid;
        if not stack_sync.bury('user', v_user_id::text, p_time, p_svix_id) then
            return 'unchanged';
        end if;
        delete from stack.users u where u.id = v_user_id;
        delete from stack.team_members m where m.user_id = v_user_id;
        delete from stack.team_permissions p where p.user_id = v_user_id;
        delete from stack.project_permissions p where p.user_id = v_user_id;
        return 'applied';
    when 'team.created', 'team.updated' then
        v_team_id := (p_data ->> 'id')::uuid;
        if stack_sync.is_deleted('team', v_team_id::text)
            or not stack_sync.advance('team', v_team_id::text, p_time, false, p_svix_id) then
            return 'stale';
        end if;
        return stack_sync.write_team(p_data, p_svix_id);
    when 'team.deleted' then
        v_team_id := (p_data ->> 'id')::uuid;
        if not stack_sync.bury('team', v_team_id::text, p_time, p_svix_id) then
            return 'unchanged';
        end if;
        delete from stack.teams t where t.id = v_team_id;
        delete from stack.team_members m where m.team_id = v_team_id;
        delete from stack.team_permissions p where p.team_id = v_team_id;
        -- Stack silently clears the selection of users who had this team selected.
        update stack.users u
        set selected_team_id = null,
            selected_team = null,
            raw = u.raw || '{"selected_team_id": null, "selected_team": null}',
            synced_at = now(),
            svix_id = p_svix_id
        where u.selected_team_id = v_team_id;
        return 'applied';
    else
        return stack_sync.change_link(
            p_event_type, (p_data ->> 'user_id')::uuid, v_team_id, p_data ->> 'id', p_time, p_svix_id
        );
    end case;
end;
$$;

-- Memberships and permissions: granted and removed by key, each guarded by its own version.
create function stack_sync.change_link(
    p_event_type text, p_user_id uuid, p_team_id uuid, p_permission_id text,
    p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_granted boolean := p_event_type like '%.created';
    v_kind text := split_part(p_event_type, '.', 1);
    v_key text;
    v_changed integer := 0;
begin
    if stack_sync.is_deleted('user', p_user_id::text)
        or (p_team_id is not null and stack_sync.is_deleted('team', p_team_id::text)) then
        -- the deletion already removed the link and outranks any event about it
        return case when v_granted then 'stale' else 'unchanged' end;
    end if;
    if v_kind = 'team_membership' then
        v_kind := 'team_member';
        v_key := p_team_id || '/' || p_user_id;
    elsif v_kind = 'team_permission' then
        v_key := p_team_id || '/' || p_user_id || '/' || p_permission_id;
        -- a grant older than the member's removal from the team went with the membership
        if v_granted and exists (
            select 1 from stack_sync.versions v
            where v.kind = 'team_member' and v.key = p_team_id || '/' || p_user_id
              and v.removed_at > p_time
        ) then
            return 'stale';
        end if;
    elsif v_kind = 'project_permission' then
        v_key := p_user_id || '/' || p_permission_id;
    else
        raise exception 'stack-sync cannot apply event type %', p_event_type;
    end if;
    if v_kind = 'team_member' and not v_granted then
        -- A removal takes the permissions granted before it, even if the member was added
        -- again since (then the removal itself is stale).
        v_changed := stack_sync.delete_permissions_granted_before(p_team_id, p_user_id, p_time);
    end if;
    if not stack_sync.advance(v_kind, v_key, p_time, not v_granted, p_svix_id) then
        return case when v_changed > 0 then 'applied' else 'stale' end;
    end if;
    if v_granted then
        v_changed := stack_sync.insert_link(v_kind, p_user_id, p_team_id, p_permission_id, p_svix_id);
    else
        v_changed := v_changed + stack_sync.delete_link(v_kind, p_user_id, p_team_id, p_permission_id);
    end if;
    return case when v_changed > 0 then 'applied' else 'unchanged' end;
end;
$$;

create function stack_sync.insert_link(
    p_kind text, p_user_id uuid, p_team_id uuid, p_permission_id text, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_inserted integer;
begin
    if p_kind = 'team_member' then
        insert into stack.team_members (team_id, user_id, svix_id)
        values (p_team_id, p_user_id, p_svix_id) on conflict do nothing;
    elsif p_kind = 'team_permission' then
        insert into stack.team_permissions (team_id, user_id, permission_id, svix_id)
        values (p_team_id, p_user_id, p_permission_id, p_svix_id) on conflict do nothing;
    else
        insert into stack.project_permissions (user_id, permission_id, svix_id)
        values (p_user_id, p_permission_id, p_svix_id) on conflict do nothing;
    end if;
    get diagnostics v_inserted = row_count;
    return v_inserted;
end;
$$;

-- Removes a link.
create function stack_sync.delete_link(
    p_kind text, p_user_id uuid, p_team_id uuid, p_permission_id text
) returns integer
language plpgsql as $$
declare
    v_deleted integer;
begin
    if p_kind = 'team_member' then
        delete from stack.team_members m where m.team_id = p_team_id and m.user_id = p_user_id;
    elsif p_kind = 'team_permission' then
        delete from stack.team_permissions p
        where p.team_id = p_team_id and p.user_id = p_user_id and p.permission_id = p_permission_id;
    else
        delete from stack.project_permissions p
        where p.user_id = p_user_id and p.permission_id = p_permission_id;
    end if;
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;

-- Removing a member removes their permissions in that team (Stack does so without events),
-- except those granted after the removal.
create function stack_sync.delete_permissions_granted_before(
    p_team_id uuid, p_user_id uuid, p_time timestamptz
) returns integer
language plpgsql as $$
declare
    v_deleted integer;
begin
    delete from stack.team_permissions p
    using stack_sync.versions v
    where p.team_id = p_team_id and p.user_id = p_user_id
      and v.kind = 'team_permission'
      and v.key = p.team_id || '/' || p.user_id || '/' || p.permission_id
      and v.source_time <= p_time;
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;

-- Applies one verified Stack event: the entry point for live delivery, replay and reconcile.
-- Returns the outcome: 'applied', 'unchanged', 'stale', or 'duplicate' when the message was
-- recorded before (and p_replay is false). The message is recorded with its outcome in the same
-- transaction as the change.
create function stack_sync.apply_event(
    p_svix_id text,
    p_event_type text,
    p_payload bytea,
    p_source_time timestamptz,
    p_data jsonb,
    p_replay boolean
) returns text
language plpgsql as $$
declare
    v_time timestamptz := coalesce(p_source_time, now());
    v_outcome text;
begin
    perform stack_sync.lock_ids(variadic stack_sync.ids_of(p_event_type, p_data));
    if not p_replay and exists (select 1 from stack.webhook_events where svix_id = p_svix_id) then
        return 'duplicate';
    end if;
    v_outcome := stack_sync.change_mirror(p_event_type, p_data, v_time, p_svix_id);
    insert into stack.webhook_events as e (svix_id, event_type, payload, source_time, outcome)
    values (p_svix_id, p_event_type, p_payload, v_time, v_outcome)
    on conflict (svix_id) do update set outcome = excluded.outcome, error = null;
    return v_outcome;
end;
$$;
