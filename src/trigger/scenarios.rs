//! Scripted sequences of events, in the order Stack sends them, with ids that chain.

use rand::seq::SliceRandom;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::events::Maker;
use crate::event_time::message_id_at;

/// A scripted sequence, as `--scenario` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A user signs up with a personal team: the team, the user, the membership and its
    /// default permission.
    Signup,
    /// A team is created, two members join with their default permission, one leaves, and the
    /// team is deleted.
    TeamLifecycle,
    /// A sign-up, a rename and a revoked permission, delivered shuffled, retried and
    /// double-sent; the mirror still ends as if they came in order.
    OutOfOrder,
}

/// One request to send: the event, and the Svix message id it goes out under.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub svix_id: String,
    pub event: Value,
}

impl Scenario {
    /// The deliveries of this scenario, in the order to send them.
    pub fn deliveries(self, maker: &mut Maker) -> Vec<Delivery> {
        match self {
            Self::Signup => in_order(signup(maker)),
            Self::TeamLifecycle => in_order(team_lifecycle(maker)),
            Self::OutOfOrder => out_of_order(maker),
        }
    }
}

/// Each event under a fresh message id created in the events' order, so that the mirror can
/// tell their order however they arrive.
pub fn in_order(events: Vec<Value>) -> Vec<Delivery> {
    let start = OffsetDateTime::now_utc();
    events
        .into_iter()
        .zip(0_i64..)
        .map(|(event, n)| Delivery {
            svix_id: message_id_at(start + time::Duration::milliseconds(n * 10)),
            event,
        })
        .collect()
}

fn signup(maker: &mut Maker) -> Vec<Value> {
    let (user, team) = (maker.id(), maker.id());
    let ids = [("team_id", json!(team)), ("user_id", json!(user))];
    // With a personal team, Stack creates the team first; the membership and the creator's
    // `team_admin` permission are sent here so that they show, where Stack itself adds them
    // silently (reconcile finds them; see docs/stack.md).
    vec![
        maker.event(
            "team.created",
            &[("id", json!(team)), ("display_name", json!("Ada's team"))],
        ),
        maker.event(
            "user.created",
            &[
                ("id", json!(user)),
                ("display_name", json!("Ada Lovelace")),
                ("selected_team_id", json!(team)),
                ("selected_team", Value::Null),
            ],
        ),
        maker.event("team_membership.created", &ids),
        maker.event(
            "team_permission.created",
            &[&ids[..], &[("id", json!("team_admin"))]].concat(),
        ),
    ]
}

fn team_lifecycle(maker: &mut Maker) -> Vec<Value> {
    let (team, grace, linus) = (maker.id(), maker.id(), maker.id());
    let user = |id: &str, name: &str| {
        maker.event(
            "user.created",
            &[
                ("id", json!(id)),
                ("display_name", json!(name)),
                ("selected_team_id", Value::Null),
                ("selected_team", Value::Null),
            ],
        )
    };
    let mut events = vec![user(&grace, "Grace Hopper"), user(&linus, "Linus Torvalds")];
    events.push(maker.event(
        "team.created",
        &[("id", json!(team)), ("display_name", json!("Compilers"))],
    ));
    for member in [&grace, &linus] {
        let ids = [("team_id", json!(team)), ("user_id", json!(member))];
        events.push(maker.event("team_membership.created", &ids));
        // Stack follows a new membership with the team's default member permission.
        let permission = [&ids[..], &[("id", json!("team_member"))]].concat();
        events.push(maker.event("team_permission.created", &permission));
    }
    let leaving = [("team_id", json!(team)), ("user_id", json!(linus))];
    events.push(maker.event("team_membership.deleted", &leaving));
    events.push(maker.event("team.deleted", &[("id", json!(team))]));
    events
}

fn out_of_order(maker: &mut Maker) -> Vec<Delivery> {
    let mut events = signup(maker);
    let user = events[1]["data"]["id"].clone();
    let team = events[0]["data"]["id"].clone();
    events.push(maker.event(
        "user.updated",
        &[
            ("id", user.clone()),
            ("display_name", json!("Ada King")),
            ("selected_team_id", team.clone()),
            ("selected_team", Value::Null),
        ],
    ));
    events.push(maker.event(
        "team_permission.deleted",
        &[
            ("id", json!("team_admin")),
            ("team_id", team),
            ("user_id", user),
        ],
    ));
    let mut deliveries = in_order(events);
    deliveries.shuffle(maker.rng());
    // Svix retries a delivery it saw fail, and may deliver one twice in a row.
    let retried = deliveries[0].clone();
    let doubled = deliveries[2].clone();
    deliveries.insert(3, doubled);
    deliveries.push(retried);
    deliveries
}
