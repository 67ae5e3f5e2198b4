//! A fake of Stack's server REST API on a loopback port: the documented endpoints and shapes
//! (`docs/stack.md`) served from an in-memory project, with either of
//! Stack's two pagination behaviours and injectable faults.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use stack_sync::config::{Settings, StackApiSettings};
use stack_sync::reconcile::{ReconcileError, Summary, reconcile};
use stack_sync::stack_api::StackApi;
use tokio::net::TcpListener;

use super::payloads::example_with;
use super::postgres::TestDb;
use super::stack_model::StackState;

pub const PROJECT_ID: &str = "6f1c2e9a-0b7d-4e1f-9a3c-2d4e5f6a7b8c";
pub const SERVER_KEY: &str = "ssk_fake_server_key_for_tests";

/// How `/users` (and, in the newer one, `/teams`) page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// Stack at 2f719903: the cursor row is the first item of the next page; `next_cursor` is
    /// the first row of the next page; `/teams` is not paginated and rejects `limit`.
    CursorIncluded,
    /// Hexclave: the cursor is the last row of the previous page and is excluded; `/teams` pages.
    CursorExcluded,
}

/// A canned answer served instead of the real one.
#[derive(Debug, Clone)]
pub struct Fault {
    pub status: u16,
    pub retry_after: Option<&'static str>,
}

/// The project's state and the fake's behaviour.
#[derive(Debug)]
pub struct Project {
    pub paging: Paging,
    /// Users by id.
    pub users: BTreeMap<String, Value>,
    pub teams: BTreeMap<String, Value>,
    pub members: BTreeSet<(String, String)>,
    pub team_permissions: BTreeSet<(String, String, String)>,
    pub project_permissions: BTreeSet<(String, String)>,
    /// Answers for the next requests, before any real one.
    pub faults: VecDeque<Fault>,
    /// Answer the next request that carries a cursor with an empty page, once.
    pub empty_page_after_cursor: bool,
    /// Delete this user right after the first `/users` page is served (paging goes on).
    pub delete_during_paging: Option<String>,
    /// Every request served: path and query.
    pub requests: Vec<String>,
    /// When set, each unfiltered `/users` request first counts the users already mirrored.
    pub observe: Option<sqlx::PgPool>,
    /// Those counts, one per unfiltered `/users` request.
    pub mirrored_at_each_page: Vec<i64>,
}

#[derive(Clone)]
pub struct FakeStack {
    pub url: String,
    project: Arc<Mutex<Project>>,
}

impl FakeStack {
    pub async fn start(paging: Paging) -> Self {
        let project = Arc::new(Mutex::new(Project {
            paging,
            users: BTreeMap::new(),
            teams: BTreeMap::new(),
            members: BTreeSet::new(),
            team_permissions: BTreeSet::new(),
            project_permissions: BTreeSet::new(),
            faults: VecDeque::new(),
            empty_page_after_cursor: false,
            delete_during_paging: None,
            requests: Vec::new(),
            observe: None,
            mirrored_at_each_page: Vec::new(),
        }));
        let router = Router::new()
            .route("/api/v1/users", get(list_users))
            .route("/api/v1/users/{id}", get(read_user))
            .route("/api/v1/teams", get(list_teams))
            .route("/api/v1/teams/{id}", get(read_team))
            .route(
                "/api/v1/team-member-profiles/{team}/{user}",
                get(read_membership),
            )
            .route("/api/v1/team-permissions", get(list_team_permissions))
            .route("/api/v1/project-permissions", get(list_project_permissions))
            .layer(middleware::from_fn_with_state(
                project.clone(),
                authenticate_and_inject,
            ))
            .with_state(project.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, project }
    }

    pub fn project(&self) -> MutexGuard<'_, Project> {
        self.project.lock().unwrap()
    }

    /// Adds a user signed up at `signed_up` (ms), named `name`.
    pub fn add_user(&self, id: &str, name: &str, signed_up: i64) {
        let user = example_with(
            "user.created",
            &[
                ("id", json!(id)),
                ("display_name", json!(name)),
                ("signed_up_at_millis", json!(signed_up)),
            ],
        )["data"]
            .clone();
        self.project().users.insert(id.to_owned(), user);
    }

    /// The project's state in the model's terms, to compare with the mirror.
    pub fn state(&self) -> StackState {
        let project = self.project();
        let names = |objects: &BTreeMap<String, Value>| {
            objects
                .iter()
                .map(|(id, o)| {
                    (
                        id.clone(),
                        o["display_name"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        };
        StackState {
            users: names(&project.users),
            teams: names(&project.teams),
            members: project.members.clone(),
            team_permissions: project.team_permissions.clone(),
            project_permissions: project.project_permissions.clone(),
            selected_teams: project
                .users
                .iter()
                .filter_map(|(id, user)| {
                    let team = user["selected_team_id"].as_str()?;
                    Some((id.clone(), team.to_owned()))
                })
                .collect(),
        }
    }

    pub fn add_team(&self, id: &str, name: &str) {
        let team = example_with(
            "team.created",
            &[("id", json!(id)), ("display_name", json!(name))],
        )["data"]
            .clone();
        self.project().teams.insert(id.to_owned(), team);
    }

    /// A sign-up as Stack makes it with a personal team: the user, the team, and what Stack adds
    /// without a webhook (the membership, the creator's `team_admin`, and the project's default
    /// permission `member`). Returns the `data` of the two webhooks Stack sends, `team.created`
    /// and `user.created`.
    pub fn sign_up(&self, user: &str, team: &str) -> (Value, Value) {
        self.add_user(user, "Ada Lovelace", 1_700_000_000_000);
        self.add_team(team, "Ada's team");
        let mut project = self.project();
        project.members.insert((team.to_owned(), user.to_owned()));
        let admin = (team.to_owned(), user.to_owned(), "team_admin".to_owned());
        project.team_permissions.insert(admin);
        let member = (user.to_owned(), "member".to_owned());
        project.project_permissions.insert(member);
        (project.teams[team].clone(), project.users[user].clone())
    }

    /// Requests served so far whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> usize {
        let project = self.project();
        project
            .requests
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    /// Runs `stack-sync reconcile` (in-process) against this fake into `db`, with its settings
    /// as `configure` changes them.
    pub async fn reconcile(
        &self,
        db: &TestDb,
        dry_run: bool,
        configure: impl FnOnce(&mut Settings),
    ) -> Result<Summary, ReconcileError> {
        let mut env: HashMap<String, String> = self
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        env.insert("DATABASE_URL".to_owned(), db.url.clone());
        let mut settings = Settings::load(None, &env).unwrap();
        configure(&mut settings);
        let api = StackApi::new(settings.stack_api().unwrap()).unwrap();
        let feed = settings.feed.channel.as_deref();
        reconcile(&db.pool, &api, &settings.reconcile, feed, dry_run).await
    }

    /// The settings of Stack's API that reach this fake, for a service to reconcile with.
    pub fn api_settings(&self) -> StackApiSettings {
        let env: HashMap<String, String> = self
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Settings::load(None, &env).unwrap().stack.unwrap()
    }

    /// The env a service or command needs to reach this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("STACK_PROJECT_ID", PROJECT_ID.to_owned()),
            ("STACK_SECRET_SERVER_KEY", SERVER_KEY.to_owned()),
            ("STACK_API_URL", self.url.clone()),
            ("STACK_SYNC_RECONCILE__RETRY_BASE_MS", "10".to_owned()),
        ]
    }
}

type Shared = State<Arc<Mutex<Project>>>;

fn known_error(status: StatusCode, code: &str) -> Response {
    let body = json!({ "code": code, "error": format!("{code} (fake)") });
    (status, [("x-stack-known-error", code)], Json(body)).into_response()
}

async fn authenticate_and_inject(State(project): Shared, request: Request, next: Next) -> Response {
    let headers: &HeaderMap = request.headers();
    // As Hexclave reads them: its own names first, Stack Auth's as a fallback.
    let header = |suffix: &str| {
        ["x-hexclave", "x-stack"]
            .iter()
            .find_map(|prefix| headers.get(format!("{prefix}-{suffix}")))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("access-type") != "server" || header("project-id") != PROJECT_ID {
        return known_error(StatusCode::BAD_REQUEST, "INVALID_ACCESS_TYPE");
    }
    if header("secret-server-key") != SERVER_KEY {
        return known_error(StatusCode::UNAUTHORIZED, "INVALID_SECRET_SERVER_KEY");
    }
    let fault = {
        let mut project = project.lock().unwrap();
        let uri = request.uri();
        project.requests.push(format!(
            "{}?{}",
            uri.path(),
            uri.query().unwrap_or_default()
        ));
        project.faults.pop_front()
    };
    if let Some(fault) = fault {
        let status = StatusCode::from_u16(fault.status).unwrap();
        let mut response = (status, "injected fault").into_response();
        if let Some(after) = fault.retry_after {
            response
                .headers_mut()
                .insert("retry-after", after.parse().unwrap());
        }
        return response;
    }
    next.run(request).await
}

fn list(items: Vec<Value>, next_cursor: Option<String>, paginated: bool) -> Response {
    if paginated {
        Json(json!({ "items": items, "is_paginated": true, "pagination": { "next_cursor": next_cursor } })).into_response()
    } else {
        Json(json!({ "items": items, "is_paginated": false })).into_response()
    }
}

async fn list_users(
    State(project): Shared,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let observer = project.lock().unwrap().observe.clone();
    if let (Some(pool), false) = (observer, query.contains_key("team_id")) {
        let mirrored: i64 = sqlx::query_scalar("select count(*) from stack.users")
            .fetch_one(&pool)
            .await
            .unwrap();
        project.lock().unwrap().mirrored_at_each_page.push(mirrored);
    }
    let mut project = project.lock().unwrap();
    let include_anonymous = query.get("include_anonymous").is_some_and(|v| v == "true");
    let mut users: Vec<&Value> = project
        .users
        .values()
        .filter(|user| include_anonymous || user["is_anonymous"] != true)
        .filter(|user| match query.get("team_id") {
            Some(team) => project
                .members
                .contains(&(team.clone(), user["id"].as_str().unwrap().to_owned())),
            None => true,
        })
        .collect();
    users.sort_by_key(|user| {
        (
            user["signed_up_at_millis"].as_i64(),
            user["id"].as_str().map(str::to_owned),
        )
    });
    let ids: Vec<String> = users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let cursor = query.get("cursor").cloned();
    let limit = query.get("limit").map(|l| l.parse::<usize>().unwrap());
    if cursor.is_some() && std::mem::take(&mut project.empty_page_after_cursor) {
        return list(Vec::new(), None, true);
    }
    let (page, next) = page_of(project.paging, &ids, cursor.as_deref(), limit);
    let items: Vec<Value> = page.iter().map(|id| project.users[id].clone()).collect();
    if let Some(doomed) = project.delete_during_paging.take() {
        forget_user(&mut project, &doomed);
    }
    list(items, next, true)
}

/// One page of `ids` under the given paging behaviour: the ids served and the next cursor.
fn page_of(
    paging: Paging,
    ids: &[String],
    cursor: Option<&str>,
    limit: Option<usize>,
) -> (Vec<String>, Option<String>) {
    let start = match (cursor, paging) {
        (None, _) => 0,
        // A cursor row that no longer exists gives an empty page, as Prisma does.
        (Some(cursor), Paging::CursorIncluded) => match ids.iter().position(|id| id == cursor) {
            Some(position) => position,
            None => return (Vec::new(), None),
        },
        (Some(cursor), Paging::CursorExcluded) => match ids.iter().position(|id| id == cursor) {
            Some(position) => position + 1,
            None => return (Vec::new(), None),
        },
    };
    let limit = limit.unwrap_or(usize::MAX);
    let page: Vec<String> = ids.iter().skip(start).take(limit).cloned().collect();
    let more = ids.len() > start + page.len();
    let next = match paging {
        Paging::CursorIncluded if more => ids.get(start + page.len()).cloned(),
        Paging::CursorExcluded if more => page.last().cloned(),
        _ => None,
    };
    (page, next)
}

/// Removes a user as Stack does: with their memberships and permissions.
pub fn forget_user(project: &mut Project, id: &str) {
    project.users.remove(id);
    project.members.retain(|(_, user)| user != id);
    project.team_permissions.retain(|(_, user, _)| user != id);
    project.project_permissions.retain(|(user, _)| user != id);
}

async fn read_user(State(project): Shared, Path(id): Path<String>) -> Response {
    match project.lock().unwrap().users.get(&id) {
        Some(user) => Json(user.clone()).into_response(),
        None => known_error(StatusCode::NOT_FOUND, "USER_NOT_FOUND"),
    }
}

async fn list_teams(
    State(project): Shared,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let project = project.lock().unwrap();
    // `user_id` lists the teams the user is a member of.
    let ids: Vec<String> = project
        .teams
        .keys()
        .filter(|team| match query.get("user_id") {
            Some(user) => project.members.contains(&((*team).clone(), user.clone())),
            None => true,
        })
        .cloned()
        .collect();
    if project.paging == Paging::CursorIncluded {
        if query.contains_key("limit") || query.contains_key("cursor") {
            return known_error(StatusCode::BAD_REQUEST, "SCHEMA_ERROR");
        }
        let teams = ids.iter().map(|id| project.teams[id].clone()).collect();
        return list(teams, None, false);
    }
    let limit = query.get("limit").map(|l| l.parse::<usize>().unwrap());
    let (page, next) = page_of(
        project.paging,
        &ids,
        query.get("cursor").map(String::as_str),
        limit,
    );
    list(
        page.iter().map(|id| project.teams[id].clone()).collect(),
        next,
        true,
    )
}

async fn read_team(State(project): Shared, Path(id): Path<String>) -> Response {
    match project.lock().unwrap().teams.get(&id) {
        Some(team) => Json(team.clone()).into_response(),
        None => known_error(StatusCode::NOT_FOUND, "TEAM_NOT_FOUND"),
    }
}

async fn read_membership(
    State(project): Shared,
    Path((team, user)): Path<(String, String)>,
) -> Response {
    let project = project.lock().unwrap();
    if !project.members.contains(&(team.clone(), user.clone())) {
        return known_error(StatusCode::NOT_FOUND, "TEAM_MEMBERSHIP_NOT_FOUND");
    }
    let profile = json!({ "team_id": team, "user_id": user, "user": project.users.get(&user) });
    Json(profile).into_response()
}

async fn list_team_permissions(
    State(project): Shared,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let project = project.lock().unwrap();
    let matches = |name: &str, value: &String| query.get(name).is_none_or(|wanted| wanted == value);
    let items = project
        .team_permissions
        .iter()
        .filter(|(team, user, id)| {
            matches("team_id", team) && matches("user_id", user) && matches("permission_id", id)
        })
        .map(|(team, user, id)| json!({ "id": id, "team_id": team, "user_id": user }))
        .collect();
    list(items, None, false)
}

async fn list_project_permissions(
    State(project): Shared,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let project = project.lock().unwrap();
    let matches = |name: &str, value: &String| query.get(name).is_none_or(|wanted| wanted == value);
    let items = project
        .project_permissions
        .iter()
        .filter(|(user, id)| matches("user_id", user) && matches("permission_id", id))
        .map(|(user, id)| json!({ "id": id, "user_id": user }))
        .collect();
    list(items, None, false)
}
