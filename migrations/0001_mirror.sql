-- The mirror of a Stack Auth project, in its own schema so it never collides with the app's tables.
--
-- There are deliberately no foreign keys between these tables: Svix delivers in no guaranteed
-- order, so a membership or permission may arrive before its user or team, and it must be kept.
-- Apps join on the ids; a row whose user or team is missing is simply not matched by the join.

create schema if not exists stack;

-- Every distinct Svix message received, whatever became of it. The primary key is what makes a
-- retried or concurrently repeated delivery a no-op: it is inserted in the same transaction as
-- the change it describes.
create table stack.webhook_events (
    svix_id     text primary key,
    -- the payload's `type`; null when the body was not a JSON object with a string `type`
    event_type  text,
    received_at timestamptz not null default now(),
    -- applied: the mirror changed accordingly; ignored: a type we do not mirror (stack.test,
    -- unknown types); failed: verified but unusable, kept with its error so it can be replayed
    outcome     text not null check (outcome in ('applied', 'ignored', 'failed')),
    -- the raw request body, byte for byte, as it was signed
    payload     bytea not null,
    error       text
);

create index webhook_events_received_at_idx on stack.webhook_events (received_at);
create index webhook_events_failed_idx on stack.webhook_events (received_at) where outcome = 'failed';

create table stack.users (
    id                                  uuid primary key,
    display_name                        text,
    -- Stack trims and lower-cases emails before storing them
    primary_email                       text,
    primary_email_verified              boolean,
    primary_email_auth_enabled          boolean,
    profile_image_url                   text,
    -- reset by Stack when an anonymous user is upgraded to a real one
    signed_up_at                        timestamptz,
    client_metadata                     jsonb,
    client_read_only_metadata           jsonb,
    server_metadata                     jsonb,
    has_password                        boolean,
    otp_auth_enabled                    boolean,
    -- deprecated by Stack: has_password or otp_auth_enabled
    auth_with_email                     boolean,
    -- deprecated by Stack: TOTP two-factor authentication is on
    requires_totp_mfa                   boolean,
    passkey_auth_enabled                boolean,
    -- array of {id, account_id, email}
    oauth_providers                     jsonb,
    selected_team_id                    uuid,
    -- the team as embedded in the user payload; Stack does not resend it when the team changes,
    -- so join stack.teams on selected_team_id for current team data
    selected_team                       jsonb,
    last_active_at                      timestamptz,
    is_anonymous                        boolean,
    is_restricted                       boolean,
    -- {"type": "anonymous" | "email_not_verified" | "restricted_by_administrator"}
    restricted_reason                   jsonb,
    restricted_by_admin                 boolean,
    restricted_by_admin_reason          text,
    restricted_by_admin_private_details text,
    country_code                        text,
    -- {"sign_up": {"bot": 0-100, "free_trial_abuse": 0-100}}
    risk_scores                         jsonb,
    -- the whole `data` object of the event that last wrote this row, including unknown fields
    raw                                 jsonb not null,
    synced_at                           timestamptz not null default now(),
    -- the Svix message that last wrote this row
    svix_id                             text not null
);

create index users_primary_email_idx on stack.users (primary_email);
create index users_selected_team_id_idx on stack.users (selected_team_id);

create table stack.teams (
    id                        uuid primary key,
    display_name              text,
    profile_image_url         text,
    created_at                timestamptz,
    client_metadata           jsonb,
    client_read_only_metadata jsonb,
    server_metadata           jsonb,
    raw                       jsonb not null,
    synced_at                 timestamptz not null default now(),
    svix_id                   text not null
);

create table stack.team_members (
    team_id   uuid not null,
    user_id   uuid not null,
    synced_at timestamptz not null default now(),
    svix_id   text not null,
    primary key (team_id, user_id)
);

-- "teams of a user"; "members of a team" is served by the primary key
create index team_members_user_id_idx on stack.team_members (user_id);

-- Only permissions granted directly: Stack sends no events for inherited or contained ones.
create table stack.team_permissions (
    team_id       uuid not null,
    user_id       uuid not null,
    -- e.g. team_member, team_admin, or a system id such as $read_members
    permission_id text not null,
    synced_at     timestamptz not null default now(),
    svix_id       text not null,
    primary key (team_id, user_id, permission_id)
);

create index team_permissions_user_id_idx on stack.team_permissions (user_id);

create table stack.project_permissions (
    user_id       uuid not null,
    permission_id text not null,
    synced_at     timestamptz not null default now(),
    svix_id       text not null,
    primary key (user_id, permission_id)
);
