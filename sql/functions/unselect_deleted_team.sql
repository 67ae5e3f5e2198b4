-- A user change as it is to be written: when the user's selected team is buried, with no team
-- selected. The team's deletion cleared the selection of the users it found (delete_team), and a
-- state of the user older than the deletion, delivered after it, must not bring the team back.
-- Callers lock the selected team with the user, so the deletion cannot commit in between.
create or replace function stack_sync.unselect_deleted_team(
    p_change stack_sync.change
) returns stack_sync.change
language plpgsql stable as $$
begin
    if stack_sync.is_deleted('team', p_change.columns ->> 'selected_team_id') then
        p_change.columns := p_change.columns
            || '{"selected_team_id": null, "selected_team": null}';
        p_change.raw := p_change.raw || '{"selected_team_id": null, "selected_team": null}';
    end if;
    return p_change;
end;
$$;
