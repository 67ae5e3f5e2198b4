//! A model of a Stack project's state that produces random histories of changes, with the
//! webhooks Stack sends for each (and, as in Stack, none for the changes it makes silently).

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use serde_json::{Value, json};
use stack_sync::event_time::message_id_at;
use time::{Duration, OffsetDateTime};

use super::payloads::example_with;

/// Stack's state, reduced to what the mirror must match.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StackState {
    pub users: BTreeMap<String, String>,
    pub teams: BTreeMap<String, String>,
    pub members: BTreeSet<(String, String)>,
    pub team_permissions: BTreeSet<(String, String, String)>,
    pub project_permissions: BTreeSet<(String, String)>,
    /// Each user's selected team, for those that have one.
    pub selected_teams: BTreeMap<String, String>,
}

/// One webhook as Svix delivers it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub svix_id: String,
    pub body: String,
}

const PERMISSIONS: [&str; 3] = ["manage_billing", "read_reports", "$read_members"];
/// Time between two changes; events of one change are a few milliseconds apart within it.
const STEP_MILLIS: i64 = 40;

/// Plays `steps` random changes and returns the final state and the webhooks, in order.
pub fn random_history(rng: &mut StdRng, steps: usize) -> (StackState, Vec<Delivery>) {
    let mut history = History {
        state: StackState::default(),
        deliveries: Vec::new(),
        start: OffsetDateTime::now_utc() - Duration::hours(2),
        step: 0,
        names: 0,
    };
    for step in 0..steps {
        history.step = i64::try_from(step).unwrap();
        history.random_change(rng);
    }
    (history.state, history.deliveries)
}

struct History {
    state: StackState,
    deliveries: Vec<Delivery>,
    start: OffsetDateTime,
    step: i64,
    names: u32,
}

impl History {
    fn random_change(&mut self, rng: &mut StdRng) {
        let user = self.state.users.keys().choose(rng).cloned();
        let team = self.state.teams.keys().choose(rng).cloned();
        match (rng.random_range(0..10), user, team) {
            (0 | 1, _, _) => self.create_user(rng),
            (2, _, _) => self.create_team(rng),
            (3, Some(user), _) if rng.random_bool(0.4) => self.select_team(rng, &user),
            (3, Some(user), _) => self.update_user(rng, &user),
            (4, _, Some(team)) if rng.random_bool(0.3) => self.delete_team(&team),
            (4, _, Some(team)) => self.update_team(rng, &team),
            (5, Some(user), _) if rng.random_bool(0.3) => self.delete_user(&user),
            (5 | 6, Some(user), Some(team)) => self.toggle_membership(&team, &user),
            (7, Some(user), Some(team)) => self.toggle_team_permission(rng, &team, &user),
            (8 | 9, Some(user), _) => self.toggle_project_permission(rng, &user),
            _ => self.create_user(rng),
        }
    }

    fn name(&mut self, rng: &mut StdRng) -> String {
        self.names += 1;
        // Sometimes an update repeats the current name: Stack sends user.updated regardless.
        format!("name-{}", if rng.random_bool(0.2) { 0 } else { self.names })
    }

    /// Sends events for the current change, a few milliseconds apart.
    fn send(&mut self, events: Vec<Value>) {
        for (offset, event) in (0_i64..).zip(events) {
            let at = self.start + Duration::milliseconds(self.step * STEP_MILLIS + offset * 8);
            self.deliveries.push(Delivery {
                svix_id: message_id_at(at),
                body: event.to_string(),
            });
        }
    }

    fn create_user(&mut self, rng: &mut StdRng) {
        let id = uuid::Uuid::new_v4().to_string();
        let name = self.name(rng);
        self.state.users.insert(id.clone(), name.clone());
        self.send(vec![user_event("user.created", &id, &name, None)]);
    }

    fn update_user(&mut self, rng: &mut StdRng, id: &str) {
        let name = if rng.random_bool(0.2) {
            self.state.users[id].clone()
        } else {
            self.name(rng)
        };
        self.state.users.insert(id.to_owned(), name.clone());
        let selected = self.state.selected_teams.get(id).cloned();
        self.send(vec![user_event(
            "user.updated",
            id,
            &name,
            selected.as_deref(),
        )]);
    }

    /// The user selects one of their teams (or none, when they have none): a `user.updated`
    /// that names it.
    fn select_team(&mut self, rng: &mut StdRng, id: &str) {
        let team = self
            .state
            .members
            .iter()
            .filter(|(_, user)| user == id)
            .map(|(team, _)| team.clone())
            .choose(rng);
        match &team {
            Some(team) => self
                .state
                .selected_teams
                .insert(id.to_owned(), team.clone()),
            None => self.state.selected_teams.remove(id),
        };
        let name = self.state.users[id].clone();
        self.send(vec![user_event("user.updated", id, &name, team.as_deref())]);
    }

    fn delete_user(&mut self, id: &str) {
        let s = &mut self.state;
        s.users.remove(id);
        s.selected_teams.remove(id);
        let teams: Vec<String> = s
            .members
            .iter()
            .filter(|(_, u)| u == id)
            .map(|(t, _)| t.clone())
            .collect();
        s.members.retain(|(_, u)| u != id);
        s.team_permissions.retain(|(_, u, _)| u != id);
        s.project_permissions.retain(|(u, _)| u != id);
        // Stack sends a membership removal per team, then the deletion; permissions go silently.
        let mut events: Vec<Value> = teams
            .iter()
            .map(|team| {
                link_event(
                    "team_membership.deleted",
                    json!({"team_id": team, "user_id": id}),
                )
            })
            .collect();
        let team_refs: Vec<Value> = teams.iter().map(|team| json!({"id": team})).collect();
        events.push(link_event(
            "user.deleted",
            json!({"id": id, "teams": team_refs}),
        ));
        self.send(events);
    }

    fn create_team(&mut self, rng: &mut StdRng) {
        let id = uuid::Uuid::new_v4().to_string();
        let name = self.name(rng);
        self.state.teams.insert(id.clone(), name.clone());
        self.send(vec![team_event("team.created", &id, &name)]);
    }

    fn update_team(&mut self, rng: &mut StdRng, id: &str) {
        let name = self.name(rng);
        self.state.teams.insert(id.to_owned(), name.clone());
        self.send(vec![team_event("team.updated", id, &name)]);
    }

    fn delete_team(&mut self, id: &str) {
        let s = &mut self.state;
        s.teams.remove(id);
        // Memberships and team permissions go silently (reference section 2.2, point 8), and so
        // does every selection of the team.
        s.members.retain(|(t, _)| t != id);
        s.selected_teams.retain(|_, t| t != id);
        s.team_permissions.retain(|(t, _, _)| t != id);
        self.send(vec![link_event("team.deleted", json!({"id": id}))]);
    }

    fn toggle_membership(&mut self, team: &str, user: &str) {
        let key = (team.to_owned(), user.to_owned());
        let data = json!({"team_id": team, "user_id": user});
        if self.state.members.remove(&key) {
            self.state
                .team_permissions
                .retain(|(t, u, _)| !(t == team && u == user));
            self.send(vec![link_event("team_membership.deleted", data)]);
        } else {
            // Joining grants the default team_member permission, with its own event.
            self.state.members.insert(key);
            self.state.team_permissions.insert((
                team.to_owned(),
                user.to_owned(),
                "team_member".to_owned(),
            ));
            let permission = json!({"id": "team_member", "team_id": team, "user_id": user});
            self.send(vec![
                link_event("team_membership.created", data),
                link_event("team_permission.created", permission),
            ]);
        }
    }

    fn toggle_team_permission(&mut self, rng: &mut StdRng, team: &str, user: &str) {
        if !self
            .state
            .members
            .contains(&(team.to_owned(), user.to_owned()))
        {
            return self.toggle_membership(team, user);
        }
        let permission = PERMISSIONS[rng.random_range(0..PERMISSIONS.len())];
        let key = (team.to_owned(), user.to_owned(), permission.to_owned());
        let data = json!({"id": permission, "team_id": team, "user_id": user});
        let event_type = if self.state.team_permissions.remove(&key) {
            "team_permission.deleted"
        } else {
            self.state.team_permissions.insert(key);
            "team_permission.created"
        };
        self.send(vec![link_event(event_type, data)]);
    }

    fn toggle_project_permission(&mut self, rng: &mut StdRng, user: &str) {
        let permission = PERMISSIONS[rng.random_range(0..PERMISSIONS.len())];
        let key = (user.to_owned(), permission.to_owned());
        let data = json!({"id": permission, "user_id": user});
        let event_type = if self.state.project_permissions.remove(&key) {
            "project_permission.deleted"
        } else {
            self.state.project_permissions.insert(key);
            "project_permission.created"
        };
        self.send(vec![link_event(event_type, data)]);
    }
}

fn user_event(event_type: &str, id: &str, name: &str, selected_team: Option<&str>) -> Value {
    // Stack embeds the selected team whole; its fields other than the id do not matter here.
    let embedded =
        selected_team.map(|team| team_event("team.created", team, "selected")["data"].clone());
    let mut event = example_with(
        "user.updated",
        &[
            ("id", json!(id)),
            ("display_name", json!(name)),
            ("selected_team_id", json!(selected_team)),
            ("selected_team", json!(embedded)),
        ],
    );
    event["type"] = json!(event_type);
    event
}

fn team_event(event_type: &str, id: &str, name: &str) -> Value {
    let mut event = example_with(
        "team.created",
        &[("id", json!(id)), ("display_name", json!(name))],
    );
    event["type"] = json!(event_type);
    event
}

fn link_event(event_type: &str, data: Value) -> Value {
    json!({"type": event_type, "data": data})
}

/// What the mirror tables hold, in the model's terms.
pub async fn mirror_state(pool: &sqlx::PgPool) -> StackState {
    let pairs = |sql: &'static str| async move {
        sqlx::query_as::<_, (String, String)>(sql)
            .fetch_all(pool)
            .await
            .unwrap()
    };
    StackState {
        users: pairs("select id::text, display_name from stack.users")
            .await
            .into_iter()
            .collect(),
        teams: pairs("select id::text, display_name from stack.teams")
            .await
            .into_iter()
            .collect(),
        members: pairs("select team_id::text, user_id::text from stack.team_members")
            .await
            .into_iter()
            .collect(),
        team_permissions: sqlx::query_as(
            "select team_id::text, user_id::text, permission_id from stack.team_permissions",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect(),
        project_permissions: pairs(
            "select user_id::text, permission_id from stack.project_permissions",
        )
        .await
        .into_iter()
        .collect(),
        selected_teams: pairs(
            "select id::text, selected_team_id::text from stack.users
             where selected_team_id is not null",
        )
        .await
        .into_iter()
        .collect(),
    }
}
