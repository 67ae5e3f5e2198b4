-- Reconcile: make the mirror equal to Stack's current state as read from its REST API, through
-- the same guards as webhooks (a state fetched at T never overwrites an event newer than T, and
-- never revives a deleted user or team).

-- One row per reconcile run, the last one answering "when did it last run, and what changed".
create table stack_sync.reconcile_runs (
    id          bigserial primary key,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    dry_run     boolean not null,
    -- running, succeeded, failed
    status      text not null default 'running',
    -- created / updated / deleted / unchanged / stale per entity
    summary     jsonb,
    error       text
);

-- What a run saw in Stack; rows of the mirror it did not see are the candidates for deletion.
-- Cleared at the end of the run.
create table stack_sync.reconcile_seen (
    run_id bigint not null,
    -- user, team, team_member, team_permission, project_permission
    kind   text not null,
    -- as in stack_sync.versions
    key    text not null,
    primary key (run_id, kind, key)
);

-- Applies a page of objects fetched at p_time as `p_event_type` events would, one by one, and
-- counts the outcomes: {"created": n, "updated": n, "unchanged": n, "stale": n}.
create function stack_sync.reconcile_apply(
    p_run_id bigint, p_event_type text, p_items jsonb, p_time timestamptz
) returns jsonb
language plpgsql as $$
declare
    v_item jsonb;
    v_existed boolean;
    v_outcome text;
    v_counts jsonb := '{"created": 0, "updated": 0, "unchanged": 0, "stale": 0}';
begin
    -- All the page's locks at once, in id order like every other caller: taking them item by
    -- item could deadlock against a webhook that holds one and waits for another.
    perform stack_sync.lock_ids(variadic coalesce(array_agg(id), '{}'))
    from jsonb_array_elements(p_items) as item,
         unnest(stack_sync.ids_of(p_event_type, item)) as id;
    for v_item in select jsonb_array_elements(p_items) loop
        v_existed := stack_sync.mirrored(p_event_type, v_item);
        v_outcome := stack_sync.change_mirror(p_event_type, v_item, p_time, 'reconcile:' || p_run_id);
        if v_outcome = 'applied' then
            v_outcome := case when v_existed then 'updated' else 'created' end;
        end if;
        v_counts := jsonb_set(v_counts, array[v_outcome], to_jsonb((v_counts ->> v_outcome)::int + 1));
    end loop;
    return v_counts;
end;
$$;

-- Applies one confirmed deletion (`p_event_type` is a *.deleted type) found at p_time.
-- Returns 'applied', 'unchanged' or 'stale'.
create function stack_sync.reconcile_delete(
    p_run_id bigint, p_event_type text, p_data jsonb, p_time timestamptz
) returns text
language plpgsql as $$
begin
    perform stack_sync.lock_ids(variadic stack_sync.ids_of(p_event_type, p_data));
    return stack_sync.change_mirror(p_event_type, p_data, p_time, 'reconcile:' || p_run_id);
end;
$$;

-- Whether the mirror holds the row an event is about.
create function stack_sync.mirrored(p_event_type text, p_data jsonb) returns boolean
language plpgsql stable as $$
begin
    case split_part(p_event_type, '.', 1)
    when 'user' then
        return exists (select 1 from stack.users where id = (p_data ->> 'id')::uuid);
    when 'team' then
        return exists (select 1 from stack.teams where id = (p_data ->> 'id')::uuid);
    when 'team_membership' then
        return exists (
            select 1 from stack.team_members
            where team_id = (p_data ->> 'team_id')::uuid and user_id = (p_data ->> 'user_id')::uuid
        );
    when 'team_permission' then
        return exists (
            select 1 from stack.team_permissions
            where team_id = (p_data ->> 'team_id')::uuid and user_id = (p_data ->> 'user_id')::uuid
              and permission_id = p_data ->> 'id'
        );
    else
        return exists (
            select 1 from stack.project_permissions
            where user_id = (p_data ->> 'user_id')::uuid and permission_id = p_data ->> 'id'
        );
    end case;
end;
$$;
