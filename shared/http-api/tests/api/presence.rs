//! `GET /presence/{userId}` and `GET /stats/connections`: connections are opened and closed
//! straight in the store, as `$connect` and `$disconnect` do, and read back through the API.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, DurationRound, Utc};
use rnd_domain::identity::Actor;
use rnd_domain::ports::{Connection, Store};
use rnd_domain::{Role, UserId};

use crate::helpers::*;

/// Now, to the millisecond (what every store keeps).
fn now_ms() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(Duration::milliseconds(1))
        .expect("truncating to ms")
}

/// Opens a connection of `who` at `at`, as `$connect` does.
async fn connect(store: &dyn Store, id: &str, who: As, at: DateTime<Utc>) -> Connection {
    let actor = Actor {
        user_id: UserId::parse(who.0).expect("user id"),
        role: who.1.parse::<Role>().expect("role"),
    };
    let mut connection = rnd_store_conformance::fixtures::connection(id, &actor, at);
    connection.token_expires_at = at + Duration::hours(1);
    store
        .open_connection(&connection, &rnd_domain::rooms::initial_rooms(&actor))
        .await
        .expect("open");
    connection
}

pub async fn a_dispatcher_sees_whether_a_driver_is_online_since_when_and_when_last_seen(
    store: Arc<dyn Store>,
) {
    // GIVEN driver-1 connected on two devices, 20 s apart
    let app = spawn_app(store);
    let at = now_ms() - Duration::seconds(30);
    let phone = connect(&*app.store, "c-phone=", DRIVER, at).await;
    let tablet = connect(&*app.store, "c-tablet=", DRIVER, at + Duration::seconds(20)).await;

    // WHEN a dispatcher asks
    let online = app.get("/presence/driver-1", ADMIN).await;

    // THEN driver-1 is online on two connections since the first, last seen at the second
    assert_eq!(online.status, StatusCode::OK, "{online:?}");
    assert_eq!(online.body["userId"], "driver-1");
    assert_eq!(online.body["online"], true);
    assert_eq!(online.body["connections"], 2);
    let since: DateTime<Utc> = online.body["since"].as_str().unwrap().parse().unwrap();
    assert_eq!(since, at);

    // WHEN both close
    let closed_at = now_ms();
    for c in [&phone, &tablet] {
        app.store
            .close_connection(&c.connection_id, closed_at)
            .await
            .expect("close");
    }
    let offline = app.get("/presence/driver-1", ADMIN).await;

    // THEN driver-1 is offline, last seen at the close, with no "since"
    assert_eq!(offline.body["online"], false, "{offline:?}");
    assert_eq!(offline.body["connections"], 0);
    assert!(offline.body.get("since").is_none());
    let seen: DateTime<Utc> = offline.body["lastSeenAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(seen, closed_at);

    // AND someone never seen is offline with no last-seen time
    let stranger = app.get("/presence/driver-2", ADMIN).await;
    assert_eq!(stranger.status, StatusCode::OK);
    assert_eq!(stranger.body["online"], false);
    assert!(stranger.body.get("lastSeenAt").is_none());
}

pub async fn a_customer_sees_the_presence_of_their_active_orders_driver_only(
    store: Arc<dyn Store>,
) {
    // GIVEN customer-1's order assigned to driver-1, who is connected
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    app.advance(&id, "assigned_to_driver").await;
    connect(&*app.store, "c-drv=", DRIVER, now_ms()).await;

    // WHEN the customer asks about their driver, THEN they see driver-1 online
    let mine = app.get("/presence/driver-1", CUSTOMER).await;
    assert_eq!(mine.status, StatusCode::OK, "{mine:?}");
    assert_eq!(mine.body["online"], true);

    // AND about anyone else, or as anyone else, the answer is 403
    for (path, who) in [
        ("/presence/driver-2", CUSTOMER),
        ("/presence/customer-2", CUSTOMER),
        ("/presence/driver-1", OTHER_CUSTOMER),
        ("/presence/driver-1", CHEF),
        ("/presence/customer-1", DRIVER),
        ("/presence/not%20an%20id", CUSTOMER),
    ] {
        let refused = app.get(path, who).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path} as {who:?}");
        assert_eq!(refused.problem_code(), "forbidden");
    }

    // WHEN the order is delivered, THEN the customer no longer sees the driver
    app.advance(&id, "delivered").await;
    let over = app.get("/presence/driver-1", CUSTOMER).await;
    assert_eq!(over.status, StatusCode::FORBIDDEN);
}

pub async fn connection_statistics_count_connects_by_role_for_admins_only(store: Arc<dyn Store>) {
    // GIVEN two customers, a driver and an admin connected, one customer gone after 40 s
    let app = spawn_app(store);
    let at = now_ms() - Duration::seconds(60);
    let gone = connect(&*app.store, "c-s1=", CUSTOMER, at).await;
    connect(&*app.store, "c-s2=", OTHER_CUSTOMER, at).await;
    connect(&*app.store, "c-s3=", DRIVER, at).await;
    connect(&*app.store, "c-s4=", ADMIN, at).await;
    app.store
        .close_connection(&gone.connection_id, at + Duration::seconds(40))
        .await
        .expect("close");

    // WHEN an admin asks for the statistics
    let stats = app.get("/stats/connections", ADMIN).await;

    // THEN three are connected now: a customer, a driver and an admin
    assert_eq!(stats.status, StatusCode::OK, "{stats:?}");
    let now = &stats.body["connectedNow"];
    assert_eq!(now["total"], 3, "{now}");
    assert_eq!(now["customer"], 1);
    assert_eq!(now["driver"], 1);
    assert_eq!(now["admin"], 1);
    assert_eq!(now["chef"], 0);
    // AND the last hour saw four connects and one 40 s session
    let hour = &stats.body["lastHour"];
    assert_eq!(hour["connects"], 4, "{hour}");
    assert_eq!(hour["disconnects"], 1);
    assert_eq!(hour["expired"], 0);
    assert_eq!(hour["sessionDuration"]["count"], 1);
    assert_eq!(hour["sessionDuration"]["averageMs"], 40_000.0);
    assert_eq!(stats.body["lastDay"]["connects"], 4);
    assert!(stats.body["peakToday"]["connections"].as_u64().is_some());

    // AND nobody else may read them
    for who in [CUSTOMER, CHEF, DRIVER] {
        let refused = app.get("/stats/connections", who).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{who:?}");
    }
}
