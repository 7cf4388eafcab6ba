//! `rnd-loadgen bench` against an in-process stack: tiny runs whose reports must add up.

use std::time::Duration;

use rnd_domain::identity::DEV_JWT_SECRET;
use rnd_domain::protocol::LocationAcks;
use rnd_loadgen::bench::{IdleOptions, KneeOptions, LoadOptions, idle, knee, load};
use rnd_local::Config;

use crate::helpers::spawn_stack;

/// The load bench's report, once it has ended by itself (within two minutes) and succeeded.
async fn load_to_the_end(options: &LoadOptions) -> rnd_loadgen::bench::LoadReport {
    tokio::time::timeout(Duration::from_secs(120), load(options))
        .await
        .expect("the bench ends by itself")
        .expect("the bench succeeds")
}

/// `per_update × accepted`, back to a whole count.
fn total(per_update: f64, accepted: u64) -> u64 {
    (per_update * accepted as f64).round() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_load_run_delivers_every_accepted_update_and_meters_the_work_per_update() {
    // GIVEN a running stack
    let stack = spawn_stack().await;
    // WHEN 2 orders with 2 subscribers each stream locations at 1 Hz for 3 s, next to 3 idle
    // connections
    let options = LoadOptions {
        orders: 2,
        subscribers: 2,
        duration: Duration::from_secs(3),
        idle: 3,
        ..LoadOptions::new(stack.http_url(), DEV_JWT_SECRET)
    };
    let report = load_to_the_end(&options).await;
    let updates = report.updates;

    // THEN every send was acknowledged, at least the first of each driver accepted
    assert!(updates.accepted >= 2, "{report:?}");
    assert_eq!(updates.refused, 0, "{report:?}");
    assert_eq!(updates.sent, updates.accepted + updates.rate_limited);
    // AND every accepted update reached both subscribers of its order, and nothing else came
    let deliveries = report.deliveries;
    assert_eq!(deliveries.expected, updates.accepted * 2);
    assert_eq!(deliveries.received, deliveries.expected, "{report:?}");
    assert_eq!((deliveries.lost, deliveries.unmatched), (0, 0));
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.max);
    // AND the server held the bench's connections: 2 drivers, 4 subscribers, 3 idle
    assert_eq!(report.connections.server, 9);
    assert_eq!(report.connections.room_members, 6);

    // AND per accepted update the stack posted one location update per room member: the
    // order's room holds its 2 subscribers only
    let per = &report.per_accepted_update;
    assert_eq!(per.posts_by_event["driver:location_update"], 2.0);
    // AND each location message was one message in, one driver:location invocation, one read
    // of the small live item, and one acknowledgement out; each accepted one a conditional
    // write of 1 WRU (one found too soon by the read is refused without a write)
    let sent = updates.sent;
    let accepted = updates.accepted;
    assert_eq!(total(per.work.messages_in, accepted), sent);
    assert_eq!(
        total(per.work.lambda_invocations["driver:location"], accepted),
        sent
    );
    assert_eq!(
        total(per.dynamodb_by_operation["get_live"].calls, accepted),
        sent
    );
    assert_eq!(
        per.dynamodb_by_operation["get_live"].read_units,
        per.dynamodb_by_operation["get_live"].calls * 0.5
    );
    assert!(
        !per.dynamodb_by_operation.contains_key("get_order"),
        "{per:?}"
    );
    let location_writes = per.dynamodb_by_operation["record_location"];
    let writes = total(location_writes.calls, accepted);
    assert!((accepted..=sent).contains(&writes), "{writes} writes");
    assert_eq!(location_writes.write_units, location_writes.calls);
    let delivered_posts: f64 = per.posts_by_event.values().sum();
    assert_eq!(
        total(per.work.messages_out, accepted),
        sent + total(delivered_posts, accepted)
    );
    // AND the route posted them itself (the fast path): one read of the room per accepted
    // update, and no fan-out invocation for a location
    assert_eq!(per.dynamodb_by_operation["room_members"].calls, 1.0);
    assert!(
        !per.work.lambda_invocations.contains_key("stream-fanout"),
        "{:?}",
        per.work.lambda_invocations
    );
    // AND the cost per million updates is above the floor of 1 + S messages
    let cost = report.cost_per_million_updates_usd;
    assert_eq!(cost.floor, 3.0);
    assert!(cost.total > cost.floor, "{cost:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_stack_routing_etas_the_bench_counts_routing_calls_per_update() {
    // GIVEN a stack routing ETAs with its built-in OSRM emulator, and one that does not
    let routed = rnd_local::start(Config {
        routing: rnd_local::RoutingConfig::BuiltinOsrm,
        ..Config::in_memory()
    })
    .await
    .expect("the stack starts");
    let plain = spawn_stack().await;
    // WHEN 2 orders stream locations at 1 Hz for 3 s on each
    let run = |url: String| LoadOptions {
        orders: 2,
        subscribers: 1,
        duration: Duration::from_secs(3),
        idle: 0,
        ..LoadOptions::new(url, DEV_JWT_SECRET)
    };
    let report = load_to_the_end(&run(routed.http_url())).await;
    let unrouted = load_to_the_end(&run(plain.http_url())).await;
    // THEN the routed run counts one routing call per order, for its first location (before
    // the window), and none in the window: the drivers stay on their routes
    assert_eq!(
        report.routing_calls_per_order_at_start,
        Some(1.0),
        "{report:?}"
    );
    assert_eq!(report.per_accepted_update.work.routing_calls, Some(0.0));
    // AND prices them at every provider's list price: a call per order is a million calls per
    // million orders, and the window's updates cost nothing in routing
    let costs = report.routing_cost_usd.as_ref().expect("routing priced");
    let mapbox = costs.iter().find(|c| c.price.provider == "mapbox").unwrap();
    assert_eq!(mapbox.per_million_orders_at_start, Some(2000.0));
    assert_eq!(mapbox.per_million_updates, 0.0);
    assert_eq!(costs.len(), rnd_loadgen::bench::cost::ROUTING_PRICES.len());
    assert!(report.routing_prices_checked.is_some());
    // AND the other counts none at all, and prices none
    assert_eq!(unrouted.routing_calls_per_order_at_start, None);
    assert_eq!(unrouted.per_accepted_update.work.routing_calls, None);
    assert_eq!(unrouted.routing_cost_usd, None);
    routed.stop().await;
    plain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_asking_for_refusals_only_get_no_message_per_accepted_update() {
    // GIVEN a running stack
    let stack = spawn_stack().await;
    // WHEN 2 orders with 2 subscribers each stream locations at 1 Hz for 3 s, asking for
    // refusals only
    let options = LoadOptions {
        orders: 2,
        subscribers: 2,
        duration: Duration::from_secs(3),
        acks: LocationAcks::Refusals,
        ..LoadOptions::new(stack.http_url(), DEV_JWT_SECRET)
    };
    let report = load_to_the_end(&options).await;
    let updates = report.updates;
    // THEN every accepted update reached both subscribers
    assert!(updates.accepted >= 2, "{report:?}");
    assert_eq!(
        report.deliveries.received,
        updates.accepted * 2,
        "{report:?}"
    );
    assert_eq!(
        (report.deliveries.lost, report.deliveries.unmatched),
        (0, 0)
    );
    // AND the only messages out were the posts and the refusals: none for an accepted update
    let per = &report.per_accepted_update;
    let delivered_posts: f64 = per.posts_by_event.values().sum();
    assert_eq!(
        total(per.work.messages_out, updates.accepted),
        total(delivered_posts, updates.accepted) + updates.rate_limited + updates.refused
    );
    assert_eq!(report.acks, LocationAcks::Refusals);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_run_holds_its_connections_and_meters_each_connect_and_disconnect() {
    // GIVEN a running stack
    let stack = spawn_stack().await;
    // WHEN 20 idle connections are opened and held
    let options = IdleOptions {
        settle: Duration::from_millis(100),
        ..IdleOptions::new(stack.http_url(), 20, DEV_JWT_SECRET)
    };
    let report = tokio::time::timeout(Duration::from_secs(60), idle(&options))
        .await
        .expect("the bench ends by itself")
        .expect("the bench succeeds");
    // THEN the server held all 20 when its memory was read
    assert_eq!(
        report.server_connections_after - report.server_connections_before,
        20
    );
    assert!(report.bytes_per_connection.is_some(), "{report:?}");
    // AND each connect ran the authorizer and $connect, which wrote the connection row and its
    // user-room membership in one transaction: 2 rows under 1 KB, 2 WRU each in a transaction,
    // 4 WRU (the idle users are customers, drivers and chefs: no admin, so no role membership),
    // then counted it for presence: its minute's counters and the user's last seen (2 WRU)
    assert_eq!(report.lambda_invocations_per_connection, 2.0);
    assert_eq!(report.write_units_per_connection, 4.0 + 2.0);
    // AND each close ran $disconnect, which read the connection row (1 RRU), deleted its one
    // membership (1 WRU), swapped the row for a session row in one transaction (4 WRU) and
    // counted it: the counters of the minute it opened, of the minute it closed when that is
    // a later one, and last seen (2 or 3 WRU)
    assert_eq!(report.lambda_invocations_per_disconnect, 1.0);
    assert_eq!(report.read_units_per_disconnect, 1.0);
    let per_disconnect = report.write_units_per_disconnect;
    assert!(
        (5.0 + 2.0..=5.0 + 3.0).contains(&per_disconnect),
        "{per_disconnect}"
    );
    stack.stop().await;
}

/// A knee sweep of 2 orders × 2 subscribers at `rates`, 2 s each, against `config`.
async fn tiny_knee(config: Config, rates: Vec<f64>) -> rnd_loadgen::bench::KneeReport {
    let stack = rnd_local::start(config).await.expect("the stack starts");
    let options = KneeOptions {
        rates,
        ..KneeOptions::new(LoadOptions {
            orders: 2,
            subscribers: 2,
            duration: Duration::from_secs(2),
            grace: Duration::from_secs(3),
            ..LoadOptions::new(stack.http_url(), DEV_JWT_SECRET)
        })
    };
    let mut printed = Vec::new();
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        knee(&options, |row| printed.push(row.rate_hz)),
    )
    .await
    .expect("the sweep ends by itself")
    .expect("the sweep succeeds");
    stack.stop().await;
    assert_eq!(
        printed,
        report.rates.iter().map(|r| r.rate_hz).collect::<Vec<_>>(),
        "every row is handed out as it is measured"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_knee_sweep_on_a_stack_that_accepts_every_location_measures_each_rate_in_turn() {
    // GIVEN a stack that accepts every location (`--location-min-interval-ms 0`)
    let config = Config {
        location_min_interval: Duration::ZERO,
        ..Config::in_memory()
    };
    // WHEN 2 orders × 2 subscribers are swept at 2 then 5 Hz
    let report = tiny_knee(config, vec![2.0, 5.0]).await;
    // THEN both rates were measured on the same orders, every location delivered to both
    // subscribers, none refused, and the server's CPU time was read, and the bench's own
    // (here the stack runs in the test's process, so that one holds both)
    assert_eq!(report.rates.len(), 2, "{report:?}");
    for row in &report.rates {
        assert_eq!((row.lost, row.unmatched, row.refused), (0, 0, 0), "{row:?}");
        assert_eq!(row.asked_deliveries_per_second, 4.0 * row.rate_hz);
        assert!(row.deliveries_per_second > 0.0, "{row:?}");
        assert!(row.server_cpu.seconds.is_some_and(|s| s >= 0.0), "{row:?}");
        assert!(row.bench_cores.is_some_and(|c| c >= 0.0), "{row:?}");
    }
    // AND the knee is the best row within the limit, in the JSON line's own field
    let best = report
        .rates
        .iter()
        .filter(|r| r.within_limit)
        .map(|r| r.deliveries_per_second)
        .fold(0.0, f64::max);
    assert_eq!(report.knee_deliveries_per_second, best);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["kneeDeliveriesPerSecond"], best);
    assert!(json["rates"][0]["benchCores"].is_number(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_the_stacks_location_limit_refuses_is_a_miss_and_ends_the_sweep() {
    // GIVEN a stack with the default limit of one location a second per order
    // WHEN the sweep asks for 4 Hz, then 5 Hz, then 6 Hz
    let report = tiny_knee(Config::in_memory(), vec![4.0, 5.0, 6.0]).await;
    // THEN the stack refused locations at both first rates, each a miss, and after two misses
    // in a row the sweep stopped: nothing counts as the knee
    assert_eq!(report.rates.len(), 2, "{report:?}");
    assert!(
        report
            .rates
            .iter()
            .all(|r| r.refused > 0 && !r.within_limit)
    );
    assert_eq!(report.knee_deliveries_per_second, 0.0);
    assert_eq!(report.knee_rate_hz, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_refuses_a_stack_that_is_not_on_loopback() {
    // GIVEN a URL of another machine
    let options = LoadOptions::new("http://192.0.2.1:9001", DEV_JWT_SECRET);
    // WHEN the bench is asked to drive it
    let refused = load(&options).await;
    // THEN it refuses before connecting anywhere
    assert!(
        matches!(refused, Err(rnd_loadgen::bench::BenchError::NotLoopback(_))),
        "{refused:?}"
    );
}
